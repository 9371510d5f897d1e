// Package redisconn builds the one shared go-redis client of the daemon from
// a URL, so that a single server, a Sentinel-managed master and a Redis
// Cluster are all configured the same way.
//
// Supported URL forms:
//
//	redis://[user:password@]host:port/db          one server (db defaults to 0)
//	rediss://[user:password@]host:port/db         one server over TLS
//	redis-sentinel://[user:password@]host1:26379,host2:26379/mastername?db=0
//	                                              a master found through Sentinel
//	rediss-sentinel://...                         the same over TLS
//	redis-cluster://[user:password@]host1:port,host2:port
//	                                              Redis Cluster (seed nodes)
//	rediss-cluster://...                          the same over TLS
//
// The port defaults to 6379 (26379 for Sentinel). For Sentinel, the user and
// password authenticate to the master and replicas; sentinel_username and
// sentinel_password query parameters authenticate to the sentinels themselves
// when they require it. Any other query parameter is one of go-redis's URL
// options (dial_timeout=5s, read_timeout, write_timeout, pool_size,
// max_retries, client_name, skip_verify=true for TLS, ...); unknown ones are
// an error. A cluster has no databases: a path other than /0 is refused.
//
// Errors name the part of the URL that is wrong and never repeat the
// password.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Kind is the topology a URL describes.
type Kind string

// The topologies Open supports.
const (
	Single   Kind = "single"
	Sentinel Kind = "sentinel"
	Cluster  Kind = "cluster"
)

// Target is a parsed Redis URL.
type Target struct {
	Kind  Kind
	Addrs []string // host:port of the server, the sentinels or the seed nodes
	TLS   bool

	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// Open parses rawURL and returns a client for it. It does not connect: call
// Ping to find out whether Redis answers.
func Open(rawURL string) (redis.UniversalClient, error) {
	t, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	return t.Client(), nil
}

// Client returns a new client for the target.
func (t *Target) Client() redis.UniversalClient {
	switch t.Kind {
	case Sentinel:
		return redis.NewFailoverClient(t.failover)
	case Cluster:
		return redis.NewClusterClient(t.cluster)
	default:
		return redis.NewClient(t.single)
	}
}

// String describes the target for logs and errors: its addresses, never a
// password.
func (t *Target) String() string {
	s := strings.Join(t.Addrs, ",")
	switch t.Kind {
	case Sentinel:
		return fmt.Sprintf("sentinel %s (master %s)", s, t.failover.MasterName)
	case Cluster:
		return "cluster " + s
	}
	return s
}

// Ping checks that Redis answers. On a cluster it pings every known node.
func Ping(ctx context.Context, c redis.UniversalClient) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		if err := cc.Ping(ctx).Err(); err != nil {
			return err
		}
		return cc.ForEachShard(ctx, func(ctx context.Context, shard *redis.Client) error {
			return shard.Ping(ctx).Err()
		})
	}
	return c.Ping(ctx).Err()
}

var hostNamePattern = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)

var schemes = map[string]struct {
	kind Kind
	tls  bool
}{
	"redis":           {Single, false},
	"rediss":          {Single, true},
	"redis-sentinel":  {Sentinel, false},
	"rediss-sentinel": {Sentinel, true},
	"redis-cluster":   {Cluster, false},
	"rediss-cluster":  {Cluster, true},
}

// errUnencodedUserinfo replaces any error about a URL with an @ after its
// host: the user or password then holds a / ? or # written as is, and what
// was read as the host, port or path is part of the password, so the error
// repeats none of it.
var errUnencodedUserinfo = errors.New("redis url: cannot be read: an @ follows the host, so the user or password probably holds / ? # or @ as is; percent-encode them (/ as %2F, ? as %3F, # as %23, @ as %40, % as %25)")

// Parse checks rawURL and builds the options of its client.
func Parse(rawURL string) (*Target, error) {
	t, err := parse(rawURL)
	if err != nil && atAfterAuthority(rawURL) {
		return nil, errUnencodedUserinfo
	}
	return t, err
}

// atAfterAuthority reports whether an @ follows the authority of raw (in its
// path, query or fragment). Only a query value may hold one as is.
func atAfterAuthority(raw string) bool {
	_, rest, _ := strings.Cut(raw, "://")
	end := strings.IndexAny(rest, "/?#")
	return end >= 0 && strings.Contains(rest[end:], "@")
}

func parse(rawURL string) (*Target, error) {
	u, hosts, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	scheme, ok := schemes[u.Scheme]
	if !ok {
		return nil, fmt.Errorf("redis url: scheme %q: want redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster", u.Scheme)
	}
	t := &Target{Kind: scheme.kind, TLS: scheme.tls}
	defPort := "6379"
	if t.Kind == Sentinel {
		defPort = "26379"
	}
	if t.Addrs, err = splitHosts(hosts, defPort); err != nil {
		return nil, err
	}
	if t.Kind == Single && len(t.Addrs) > 1 {
		return nil, errors.New("redis url: host: one host:port for redis://; use redis-sentinel:// or redis-cluster:// for a list")
	}
	user, pass := userPassword(u)
	q := u.Query()
	switch t.Kind {
	case Sentinel:
		err = t.parseSentinel(u, q, user, pass)
	case Cluster:
		err = t.parseCluster(u, q, user, pass)
	default:
		err = t.parseSingle(u, q, user, pass)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// parseURL parses raw without letting url.Error repeat it (it may hold a
// password). The host list is cut out first, because net/url refuses lists
// such as "h1:26379,h2" and IPv6 literals in lists; u.Host is then empty.
func parseURL(raw string) (u *url.URL, hosts string, err error) {
	if strings.TrimSpace(raw) == "" {
		return nil, "", errors.New("redis url: empty")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, "", errors.New("redis url: want scheme://host:port")
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	userinfo := ""
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hosts = authority[:at+1], authority[at+1:]
	} else {
		hosts = authority
	}
	if hosts == "" {
		return nil, "", errors.New("redis url: host: required (scheme://host:port)")
	}
	u, err = url.Parse(scheme + "://" + userinfo + "host.invalid" + rest[end:])
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var ee url.EscapeError // repeats the escape, which may be in the password
		if errors.As(err, &ee) {
			return nil, "", errors.New("redis url: a % not followed by two hex digits (write % as %25)")
		}
		return nil, "", fmt.Errorf("redis url: %s", strings.ReplaceAll(err.Error(), raw, "<url>"))
	}
	u.Host = ""
	if u.Fragment != "" {
		return nil, "", errors.New("redis url: fragment: not allowed")
	}
	// u.Query drops what it cannot read: a sentinel_password would be
	// ignored, and Redact would not find it to hide it.
	if _, err := url.ParseQuery(u.RawQuery); err != nil {
		return nil, "", errors.New("redis url: query: cannot be read; in a value, write % as %25 and ; as %3B")
	}
	return u, hosts, nil
}

// splitHosts splits a comma-separated host list and checks every host:port.
func splitHosts(hosts, defPort string) ([]string, error) {
	var addrs []string
	for i, h := range strings.Split(hosts, ",") {
		if h == "" {
			return nil, fmt.Errorf("redis url: host %d: empty", i+1)
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			// No port: net.SplitHostPort refuses "host" and "[::1]".
			host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defPort
			if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
				return nil, fmt.Errorf("redis url: host %q: want host:port", h)
			}
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("redis url: host %q: port %q: want 1-65535", h, port)
		}
		if host == "" {
			return nil, fmt.Errorf("redis url: host %q: name missing", h)
		}
		if net.ParseIP(host) == nil && !hostNamePattern.MatchString(host) {
			return nil, fmt.Errorf("redis url: host %q: want a host name or IP address", h)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	return addrs, nil
}

func userPassword(u *url.URL) (user, pass string) {
	if u.User == nil {
		return "", ""
	}
	pass, _ = u.User.Password()
	return u.User.Username(), pass
}

// goRedisURL rebuilds a URL that go-redis's parsers accept: plain scheme, the
// first address as host, the others as addr= parameters, no credentials.
func (t *Target) goRedisURL(path string, q url.Values) string {
	scheme := "redis"
	if t.TLS {
		scheme = "rediss"
	}
	q = cloneValues(q)
	for _, a := range t.Addrs[1:] {
		q.Add("addr", a)
	}
	u := url.URL{Scheme: scheme, Host: t.Addrs[0], Path: path, RawQuery: q.Encode()}
	return u.String()
}

func cloneValues(q url.Values) url.Values {
	c := url.Values{}
	for k, v := range q {
		c[k] = append([]string(nil), v...)
	}
	return c
}

func (t *Target) parseSingle(u *url.URL, q url.Values, user, pass string) error {
	if err := checkNoAddrParam(q); err != nil {
		return err
	}
	o, err := redis.ParseURL(t.goRedisURL(u.Path, q))
	if err != nil {
		return describe(err)
	}
	o.Username, o.Password = user, pass
	t.single = o
	return nil
}

func (t *Target) parseSentinel(u *url.URL, q url.Values, user, pass string) error {
	if err := checkNoAddrParam(q); err != nil {
		return err
	}
	master := strings.Trim(u.Path, "/")
	if master == "" || strings.Contains(master, "/") {
		return errors.New("redis url: path: want /mastername (the name sentinels monitor)")
	}
	sentinelUser, sentinelPass := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	if q.Has("master_name") || q.Has("username") || q.Has("password") {
		return errors.New("redis url: query: master_name, username and password belong in the path and user:password@")
	}
	o, err := redis.ParseFailoverURL(t.goRedisURL("", q))
	if err != nil {
		return describe(err)
	}
	o.MasterName = master
	o.Username, o.Password = user, pass
	o.SentinelUsername, o.SentinelPassword = sentinelUser, sentinelPass
	t.failover = o
	return nil
}

func (t *Target) parseCluster(u *url.URL, q url.Values, user, pass string) error {
	if err := checkNoAddrParam(q); err != nil {
		return err
	}
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return fmt.Errorf("redis url: path %q: Redis Cluster has only database 0", u.Path)
	}
	if q.Has("db") {
		return errors.New("redis url: query db: Redis Cluster has only database 0")
	}
	o, err := redis.ParseClusterURL(t.goRedisURL("", q))
	if err != nil {
		return describe(err)
	}
	o.Username, o.Password = user, pass
	t.cluster = o
	return nil
}

func checkNoAddrParam(q url.Values) error {
	if q.Has("addr") {
		return errors.New("redis url: query addr: list the hosts comma-separated instead (host1:port,host2:port)")
	}
	return nil
}

// describe rewords a go-redis option error as ours. Those errors name the
// option and its value; the rebuilt URL they saw holds no password.
func describe(err error) error {
	return fmt.Errorf("redis url: %s", strings.TrimPrefix(err.Error(), "redis: "))
}

// Redact returns rawURL with its passwords replaced by <redacted>, for
// printing the effective configuration. An unparsable URL is redacted whole.
func Redact(rawURL string) string {
	u, hosts, err := parseURL(rawURL)
	if err != nil {
		return "<redacted: unparsable url>"
	}
	const mark = "REDACTED-5f1c"
	const hostMark = "HOSTS-5f1c"
	u.Host = hostMark
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), mark)
		}
	}
	if q := u.Query(); q.Has("sentinel_password") {
		q.Set("sentinel_password", mark)
		u.RawQuery = q.Encode()
	}
	return strings.NewReplacer(mark, "<redacted>", hostMark, hosts).Replace(u.String())
}
