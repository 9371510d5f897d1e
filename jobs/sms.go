package jobs

// smsSpecs lists the sms:* kinds (incoming SMS, delivery status).
func smsSpecs() []Spec { return nil }
