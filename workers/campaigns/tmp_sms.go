package campaigns

import "context"

// TEMPORARY until workers/sms lands.
type smsMessage struct{ To, Body, StatusCallback, Ref string }
type smsResult struct{ SID string }

func smsIsPermanent(err error) bool { return false }

var _ = context.Background
