package web

import (
	"net/http"

	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"github.com/shopworks/backoffice/cmd/internal/config"
)

// monitorRoot is where asynqmon is mounted.
const monitorRoot = "/monitor"

// sharedRedis hands asynqmon our Redis client instead of letting it open
// its own. asynqmon's Close would close it: the Server never calls it.
type sharedRedis struct{ c redis.UniversalClient }

// MakeRedisClient implements asynq.RedisConnOpt.
func (o sharedRedis) MakeRedisClient() interface{} { return o.c }

// registerMonitor mounts asynqmon behind our login: operators get the full
// UI, viewers a read-only one.
func (s *Server) registerMonitor() {
	conn := sharedRedis{c: s.redis}
	full := asynqmon.New(asynqmon.Options{RootPath: monitorRoot, RedisConnOpt: conn})
	readOnly := asynqmon.New(asynqmon.Options{RootPath: monitorRoot, RedisConnOpt: conn, ReadOnly: true})
	s.page(full.RootPath()+"/", config.RoleViewer, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// asynqmon sets no framing policy of its own, and its buttons
		// delete and run tasks: no other page may frame it (a same-site
		// page gets the SameSite=Strict session cookie sent along).
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
		c, _ := callerOf(r.Context())
		if c.Role.Allows(config.RoleOperator) {
			full.ServeHTTP(w, r)
			return
		}
		readOnly.ServeHTTP(w, r)
	}))
}
