package customers

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// claim is one index entry an update needs before it writes its record.
type claim struct {
	kind  string // "email" or "phone": the field named in errors
	index string // index hash key
	field string // lower-case e-mail or E.164 phone
	value string // the claim value written
	fresh bool   // the entry was free or stale: ours to release on failure
	other string // claim value of another owner, while unresolved
}

// planClaims decides which index entries the new record needs and records
// the claim values it will hold.
func (p *plan) planClaims(now time.Time) {
	p.next.EmailClaim, p.next.PhoneClaim = "", ""
	if e := p.next.Email; e != "" {
		if p.exists && emailKey(e) == emailKey(p.cur.Email) && p.cur.EmailClaim != "" {
			p.next.EmailClaim = p.cur.EmailClaim
		} else {
			c := &claim{kind: "email", field: emailKey(e), value: newClaim(p.id, now)}
			p.claims = append(p.claims, c)
			p.next.EmailClaim = c.value
		}
	}
	if ph := p.next.Phone; ph != "" {
		if p.exists && ph == p.cur.Phone && p.cur.PhoneClaim != "" {
			p.next.PhoneClaim = p.cur.PhoneClaim
		} else {
			c := &claim{kind: "phone", field: ph, value: newClaim(p.id, now)}
			p.claims = append(p.claims, c)
			p.next.PhoneClaim = c.value
		}
	}
}

func (s *Store) indexKey(kind string) string {
	if kind == "email" {
		return s.keys.emailIndex()
	}
	return s.keys.phoneIndex()
}

// claimAll makes the claims of every plan, fails the plans whose e-mail or
// phone belongs to another customer, releases what those plans had claimed,
// and adds the surviving plans to their sets.
func (s *Store) claimAll(ctx context.Context, plans []*plan, now time.Time) error {
	var todo []*claim
	for _, p := range plans {
		for _, c := range p.claims {
			c.index = s.indexKey(c.kind)
			todo = append(todo, c)
		}
	}
	if err := s.runClaims(ctx, todo, false); err != nil {
		return err
	}
	if err := s.resolveClaims(ctx, plans, now); err != nil {
		return err
	}
	var release []*claim
	for _, p := range plans {
		if p.err != nil {
			release = append(release, p.freshClaims()...)
		}
	}
	if err := s.releaseClaims(ctx, release); err != nil {
		return err
	}
	return s.joinSets(ctx, plans)
}

// runClaims runs claimScript for cs; with takeover, each replaces the stale
// claim in c.other. Unresolved conflicts are left in c.other.
func (s *Store) runClaims(ctx context.Context, cs []*claim, takeover bool) error {
	calls := make([]scriptCall, len(cs))
	for i, c := range cs {
		stale := ""
		if takeover {
			stale = c.other
		}
		owner, _ := parseClaim(c.value)
		calls[i] = scriptCall{claimScript, []string{c.index}, []any{c.field, owner, c.value, stale}}
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return fmt.Errorf("claim index entries: %w", err)
	}
	for i, cmd := range cmds {
		res, err := cmd.Text()
		if err != nil {
			return fmt.Errorf("claim %s %s: %w", cs[i].kind, cs[i].field, err)
		}
		cs[i].other = ""
		switch res {
		case "":
			cs[i].fresh = true
		case "=":
		default:
			cs[i].other = res
		}
	}
	return nil
}

// resolveClaims reads the records of the other owners met by the claims: a
// claim whose owner's record holds the value, or that is younger than
// claimGrace, fails its plan; an older one is stale and taken over.
func (s *Store) resolveClaims(ctx context.Context, plans []*plan, now time.Time) error {
	var conflicts []*claim
	var owners []*plan
	for _, p := range plans {
		for _, c := range p.claims {
			if c.other != "" {
				conflicts, owners = append(conflicts, c), append(owners, p)
			}
		}
	}
	if len(conflicts) == 0 {
		return nil
	}
	ks := make([]string, len(conflicts))
	for i, c := range conflicts {
		owner, _ := parseClaim(c.other)
		ks[i] = s.keys.record(owner)
	}
	raws, found, err := s.getMany(ctx, ks)
	if err != nil {
		return fmt.Errorf("read owners of claimed entries: %w", err)
	}
	var stale []*claim
	for i, c := range conflicts {
		owner, at := parseClaim(c.other)
		if holds(raws[i], found[i], c) || now.Sub(at) < claimGrace {
			owners[i].fail(inUse(c, owner))
			continue
		}
		stale = append(stale, c)
	}
	if err := s.runClaims(ctx, stale, true); err != nil {
		return err
	}
	for _, c := range stale {
		if c.other != "" { // claimed again meanwhile
			owner, _ := parseClaim(c.other)
			for i, cc := range conflicts {
				if cc == c {
					owners[i].fail(inUse(c, owner))
				}
			}
		}
	}
	return nil
}

// holds reports whether the stored record raw still has the claimed value.
func holds(raw string, found bool, c *claim) bool {
	if !found {
		return false
	}
	r, err := decodeRecord("", raw)
	if err != nil {
		return true // cannot tell: do not take it
	}
	if c.kind == "email" {
		return emailKey(r.Email) == c.field
	}
	return r.Phone == c.field
}

func inUse(c *claim, owner string) error {
	what := "e-mail address"
	if c.kind == "phone" {
		what = "phone number"
	}
	return &FieldError{Field: c.kind, Msg: fmt.Sprintf("%s %s already belongs to customer %s", what, c.field, owner), Err: ErrInUse}
}

func (p *plan) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// freshClaims returns the claims this plan made on free or stale entries:
// the only ones it may release (an entry the customer already held may be
// what a concurrent update of the same customer relies on).
func (p *plan) freshClaims() []*claim {
	var out []*claim
	for _, c := range p.claims {
		if c.fresh && c.other == "" {
			out = append(out, c)
		}
	}
	return out
}

// releaseClaims removes each entry that still holds the given claim.
func (s *Store) releaseClaims(ctx context.Context, cs []*claim) error {
	calls := make([]scriptCall, len(cs))
	for i, c := range cs {
		calls[i] = scriptCall{releaseScript, []string{c.index}, []any{c.field, c.value}}
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return fmt.Errorf("release index entries: %w", err)
	}
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			return fmt.Errorf("release %s %s: %w", cs[i].kind, cs[i].field, err)
		}
	}
	return nil
}

// joinSets adds new customers to the all-customers set and every surviving
// plan to the tag sets it gains, before the records are written.
func (s *Store) joinSets(ctx context.Context, plans []*plan) error {
	cmds, _ := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, pl := range plans {
			if pl.err != nil {
				continue
			}
			if !pl.exists {
				p.SAdd(ctx, s.keys.all(), pl.id)
			}
			for _, t := range pl.addTags {
				p.SAdd(ctx, s.keys.tag(t), pl.id)
			}
		}
		return nil
	})
	if err := execErr(cmds); err != nil {
		return fmt.Errorf("add customers to their sets: %w", err)
	}
	return nil
}
