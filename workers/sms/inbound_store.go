package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultInboundTTL is how long an incoming message is kept as received
// (the customer's timeline keeps its text for longer).
const DefaultInboundTTL = 90 * 24 * time.Hour

// InboundMessage is an incoming SMS as Twilio delivered it, filed under
// the customer it came from.
type InboundMessage struct {
	SID        string    `json:"sid"`
	CustomerID string    `json:"customer_id"`
	From       string    `json:"from"` // E.164
	To         string    `json:"to"`
	Body       string    `json:"body"`
	MediaURLs  []string  `json:"media_urls,omitempty"`
	Keyword    string    `json:"keyword"` // Keyword.String()
	At         time.Time `json:"at"`
	// ReplySID is the Twilio SID of the automatic reply (HELP) once sent,
	// "pending" while it is being sent (or when that attempt crashed).
	ReplySID string `json:"reply_sid,omitempty"`
}

// ErrNoInbound is returned for a MessageSid that was never filed (or
// whose record expired).
var ErrNoInbound = errors.New("sms: no such incoming message")

// InboundStore keeps every incoming message, with its media URLs, and the
// ledger of automatic replies, so that a retried job never replies twice.
//
// Keys, with prefix "bo:" (one key per message, so no hash tag is needed):
//
//	bo:sms:in:<MessageSid>  hash  data -> InboundMessage JSON; reply -> reply SID
type InboundStore struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewInboundStore returns the store of incoming messages on rdb under prefix.
func NewInboundStore(rdb redis.UniversalClient, prefix string) *InboundStore {
	return &InboundStore{rdb: rdb, prefix: prefix, ttl: DefaultInboundTTL}
}

func (s *InboundStore) key(sid string) string { return s.prefix + "sms:in:" + sid }

// Save files m unless a message with its SID is filed already (a retried
// job keeps the first copy).
func (s *InboundStore) Save(ctx context.Context, m InboundMessage) error {
	m.ReplySID = ""
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("incoming sms %s: encode: %w", m.SID, err)
	}
	k := s.key(m.SID)
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, k, "data", data)
		p.Expire(ctx, k, s.ttl)
		return nil
	}); err != nil {
		return fmt.Errorf("incoming sms %s: save: %w", m.SID, err)
	}
	return nil
}

// Get returns the incoming message sid, with its reply SID if one was sent.
func (s *InboundStore) Get(ctx context.Context, sid string) (InboundMessage, error) {
	vals, err := s.rdb.HMGet(ctx, s.key(sid), "data", "reply").Result()
	if err != nil {
		return InboundMessage{}, fmt.Errorf("incoming sms %s: read: %w", sid, err)
	}
	data, _ := vals[0].(string)
	if data == "" {
		return InboundMessage{}, fmt.Errorf("incoming sms %s: %w", sid, ErrNoInbound)
	}
	var m InboundMessage
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		return InboundMessage{}, fmt.Errorf("incoming sms %s: decode: %w", sid, err)
	}
	m.ReplySID, _ = vals[1].(string)
	return m, nil
}

// replyPending marks an automatic reply that is being sent: a job that
// finds it after a crash cannot know whether the reply went out.
const replyPending = "pending"

// ErrReplyInDoubt is returned by ClaimReply when an earlier attempt claimed
// the reply and never recorded its outcome (it crashed mid-send).
var ErrReplyInDoubt = errors.New("sms: automatic reply in doubt: an earlier attempt crashed while sending it")

// ClaimReply reserves the automatic reply to sid before it is sent. It
// returns the reply's SID when one was sent already (send nothing),
// ErrReplyInDoubt when an earlier attempt crashed while sending (send
// nothing: at most once), or "" when the caller holds the claim and must
// end it with SetReply or ReleaseReply.
func (s *InboundStore) ClaimReply(ctx context.Context, sid string) (string, error) {
	k := s.key(sid)
	var claim *redis.BoolCmd
	var cur *redis.StringCmd
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		claim = p.HSetNX(ctx, k, "reply", replyPending)
		cur = p.HGet(ctx, k, "reply")
		p.Expire(ctx, k, s.ttl)
		return nil
	}); err != nil {
		return "", fmt.Errorf("incoming sms %s: claim reply: %w", sid, err)
	}
	switch {
	case claim.Val():
		return "", nil
	case cur.Val() == replyPending:
		return "", fmt.Errorf("incoming sms %s: %w", sid, ErrReplyInDoubt)
	}
	return cur.Val(), nil
}

// releaseReplyScript ends a claim whose send failed, so a retry may send.
//
// KEYS[1] the message hash
// ARGV[1] the pending marker
// Returns 1 when the claim was released, 0 when there was none.
var releaseReplyScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'reply') == ARGV[1] then return redis.call('HDEL', KEYS[1], 'reply') end
return 0
`)

// ReleaseReply ends the claim of ClaimReply after a send that certainly
// failed (Twilio refused it), so that a retry sends again.
func (s *InboundStore) ReleaseReply(ctx context.Context, sid string) error {
	if err := releaseReplyScript.Run(ctx, s.rdb, []string{s.key(sid)}, replyPending).Err(); err != nil {
		return fmt.Errorf("incoming sms %s: release reply claim: %w", sid, err)
	}
	return nil
}

// SetReply records that the automatic reply to sid went out as replySID,
// ending the claim of ClaimReply.
func (s *InboundStore) SetReply(ctx context.Context, sid, replySID string) error {
	k := s.key(sid)
	if _, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, "reply", replySID)
		p.Expire(ctx, k, s.ttl)
		return nil
	}); err != nil {
		return fmt.Errorf("incoming sms %s: record reply %s: %w", sid, replySID, err)
	}
	return nil
}
