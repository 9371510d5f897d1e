package customers

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// scriptCall is one script invocation of a pipelined batch.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
}

// runScripts runs calls in one pipeline with EVALSHA, then re-sends with
// EVAL the calls a node answered NOSCRIPT (those did not run, so sending
// them again is safe). Replies, including script errors, are in the returned
// commands; the error is only for a failed round trip.
func (s *Store) runScripts(ctx context.Context, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	if len(calls) == 0 {
		return cmds, nil
	}
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	var missing []int
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range missing {
				cmds[i] = calls[i].script.Eval(ctx, p, calls[i].keys, calls[i].args...)
			}
			return nil
		})
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && !isReply(err) {
			return nil, err
		}
	}
	return cmds, nil
}

// isReply reports whether err is an answer of the server (including
// redis.Nil), not a failure to reach it.
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// execErr returns the first error of cmds other than redis.Nil.
func execErr(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("redis %s: %w", c.Name(), err)
		}
	}
	return nil
}

// getMany reads string keys in one pipeline; a missing key reads as "" with
// found false.
func (s *Store) getMany(ctx context.Context, keys []string) (vals []string, found []bool, err error) {
	cmds := make([]*redis.StringCmd, len(keys))
	all, _ := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err := execErr(all); err != nil {
		return nil, nil, err
	}
	vals, found = make([]string, len(keys)), make([]bool, len(keys))
	for i, c := range cmds {
		vals[i], found[i] = c.Val(), c.Err() == nil
	}
	return vals, found, nil
}
