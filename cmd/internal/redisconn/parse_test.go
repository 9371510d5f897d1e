package redisconn

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url       string
		wantKind  Kind
		wantAddrs []string
		wantTLS   bool
		check     func(t *testing.T, tg *Target)
	}{
		{"redis://127.0.0.1:6379/0", Single, []string{"127.0.0.1:6379"}, false, func(t *testing.T, tg *Target) {
			if tg.single.DB != 0 || tg.single.Password != "" {
				t.Errorf("DB=%d Password=%q, want 0 and none", tg.single.DB, tg.single.Password)
			}
		}},
		{"redis://app:pa%40ss@redis.internal/5?dial_timeout=3s&pool_size=20", Single, []string{"redis.internal:6379"}, false, func(t *testing.T, tg *Target) {
			o := tg.single
			got := []any{o.Username, o.Password, o.DB, o.DialTimeout, o.PoolSize}
			want := []any{"app", "pa@ss", 5, 3 * time.Second, 20}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("options (-want,+got):\n%s", diff)
			}
		}},
		{"rediss://:secret@cache.example.com:6380", Single, []string{"cache.example.com:6380"}, true, func(t *testing.T, tg *Target) {
			if tg.single.TLSConfig == nil || tg.single.TLSConfig.ServerName != "cache.example.com" {
				t.Errorf("TLSConfig = %+v, want ServerName cache.example.com", tg.single.TLSConfig)
			}
			if tg.single.Password != "secret" {
				t.Errorf("Password = %q, want secret", tg.single.Password)
			}
		}},
		{"redis://[::1]:6379", Single, []string{"[::1]:6379"}, false, nil},
		{"redis-sentinel://s1:26379,s2:26380,s3/mymaster?db=2", Sentinel, []string{"s1:26379", "s2:26380", "s3:26379"}, false, func(t *testing.T, tg *Target) {
			o := tg.failover
			got := []any{o.MasterName, o.DB, o.SentinelAddrs, o.Password}
			want := []any{"mymaster", 2, []string{"s1:26379", "s2:26380", "s3:26379"}, ""}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("options (-want,+got):\n%s", diff)
			}
		}},
		{"redis-sentinel://:masterpw@s1/shop?sentinel_username=sen&sentinel_password=senpw", Sentinel, []string{"s1:26379"}, false, func(t *testing.T, tg *Target) {
			o := tg.failover
			got := []string{o.Password, o.SentinelUsername, o.SentinelPassword}
			if diff := cmp.Diff([]string{"masterpw", "sen", "senpw"}, got); diff != "" {
				t.Errorf("credentials (-want,+got):\n%s", diff)
			}
		}},
		{"rediss-sentinel://s1/shop", Sentinel, []string{"s1:26379"}, true, func(t *testing.T, tg *Target) {
			if tg.failover.TLSConfig == nil {
				t.Error("TLSConfig is nil for rediss-sentinel")
			}
		}},
		{"redis-cluster://u:p@n1:7000,n2:7001,[fd00::3]:7002", Cluster, []string{"n1:7000", "n2:7001", "[fd00::3]:7002"}, false, func(t *testing.T, tg *Target) {
			o := tg.cluster
			got := []any{o.Addrs, o.Username, o.Password}
			want := []any{[]string{"n1:7000", "n2:7001", "[fd00::3]:7002"}, "u", "p"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("options (-want,+got):\n%s", diff)
			}
		}},
		{"redis-cluster://n1:7000", Cluster, []string{"n1:7000"}, false, nil},
		{"rediss-cluster://n1:7000/0?read_timeout=2s", Cluster, []string{"n1:7000"}, true, func(t *testing.T, tg *Target) {
			if tg.cluster.ReadTimeout != 2*time.Second || tg.cluster.TLSConfig == nil {
				t.Errorf("ReadTimeout=%v TLS=%v, want 2s and TLS", tg.cluster.ReadTimeout, tg.cluster.TLSConfig != nil)
			}
		}},
	}
	for _, tt := range tests {
		tg, err := Parse(tt.url)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.url, err)
			continue
		}
		got := []any{tg.Kind, tg.Addrs, tg.TLS}
		want := []any{tt.wantKind, tt.wantAddrs, tt.wantTLS}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Parse(%q) kind, addrs, tls (-want,+got):\n%s", tt.url, diff)
		}
		if tt.check != nil {
			t.Run(tt.url, func(t *testing.T) { tt.check(t, tg) })
		}
		if s := tg.String(); strings.Contains(s, "pa@ss") || strings.Contains(s, "secret") || strings.Contains(s, "masterpw") {
			t.Errorf("Target.String() = %q shows a password", s)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ url, wantErr string }{
		{"", "redis url: empty"},
		{"localhost:6379", "redis url: want scheme://host:port"},
		{"http://localhost", `redis url: scheme "http": want redis, rediss`},
		{"redis://", "redis url: host: required"},
		{"redis://:hunter2@", "redis url: host: required"},
		{"redis://:hunter2@localhost:abc", `redis url: host "localhost:abc": port "abc"`},
		{"redis://:hunter2@localhost:0", `port "0": want 1-65535`},
		{"redis://:hunter2@localhost:65536", `port "65536": want 1-65535`},
		{"redis://:hunter2@a:1,b:2", "redis url: host: one host:port for redis://"},
		{"redis://:hunter2@localhost/x", `redis url: invalid database number: "x"`},
		{"redis://:hunter2@localhost/1/2", "redis url: invalid URL path"},
		{"redis://:hunter2@localhost?dial_timeout=soon", "redis url: invalid dial_timeout duration"},
		{"redis://:hunter2@localhost?colour=red", "redis url: unexpected option: colour"},
		{"redis://:hunter2@localhost?addr=b:1", "redis url: query addr: list the hosts comma-separated"},
		{"redis://:hunter2@localhost#frag", "redis url: fragment: not allowed"},
		{"redis://:hunter2@a:1,,b:2", "redis url: host 2: empty"},
		{"redis://:hunter2@::1", `redis url: host "::1": want host:port`},
		{"redis-sentinel://:hunter2@s1", "redis url: path: want /mastername"},
		{"redis-sentinel://:hunter2@s1/a/b", "redis url: path: want /mastername"},
		{"redis-sentinel://:hunter2@s1/m?master_name=x", "redis url: query: master_name, username and password"},
		{"redis-sentinel://s1/m?db=two", "redis url: invalid database number"},
		{"redis-cluster://:hunter2@n1:7000/3", `redis url: path "/3": Redis Cluster has only database 0`},
		{"redis-cluster://n1:7000?db=1", "redis url: query db: Redis Cluster has only database 0"},
		{"redis-cluster://n1:7000?max_redirects=many", "redis url: invalid max_redirects number"},
		{"redis://:hunter2@local host:1", `redis url: host "local host:1": want a host name or IP address`},
		{"redis://:hunter2@-x:1", `redis url: host "-x:1": want a host name`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.url)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tt.url, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q) error repeats the password: %v", tt.url, err)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://app:pw@h:1/2", "redis://app:<redacted>@h:1/2"},
		{"redis://:pw@h", "redis://:<redacted>@h"},
		{"redis://app@h", "redis://app@h"},
		{"redis-sentinel://:pw@s1:26379,s2/m?db=1&sentinel_password=spw", "redis-sentinel://:<redacted>@s1:26379,s2/m?db=1&sentinel_password=<redacted>"},
		{"redis-cluster://u:p@[::1]:7000,[::1]:7001", "redis-cluster://u:<redacted>@[::1]:7000,[::1]:7001"},
		{"nonsense with pw", "<redacted: unparsable url>"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A password with / ? # or @ written unencoded cuts the URL in the wrong
// place: what is read as the host is then the start of the password. The
// error must say what to do and repeat none of it.
func TestParseUnencodedPassword(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"redis://:Xk9/hunter2@relay:6379/0",
		"redis://app:Xk9?hunter2@relay:6379",
		"redis://:Xk9#hunter2@relay:6379/0",
		"redis://:Xk9/hunter2@relay",
		"redis-sentinel://:Xk9/hunter2@s1,s2/mymaster",
		"redis-cluster://u:Xk9?hunter2@n1:7000,n2:7000",
	} {
		_, err := Parse(raw)
		if err == nil || !strings.Contains(err.Error(), "percent-encode") {
			t.Errorf("Parse(%q) = %v, want an error saying to percent-encode the password", raw, err)
		}
		if err != nil && (strings.Contains(err.Error(), "Xk9") || strings.Contains(err.Error(), "hunter2")) {
			t.Errorf("Parse(%q) error repeats part of the password: %v", raw, err)
		}
	}
	// net/url's own error repeats a bad escape, which may be in the password.
	if _, err := Parse("redis://:hun%zzter2@h/0"); err == nil || strings.Contains(err.Error(), "%zz") {
		t.Errorf("Parse() of a password with a bad escape = %v, want an error without it", err)
	}
	// An @ in a query value is fine.
	if _, err := Parse("redis-sentinel://:pw@s1/m?sentinel_password=a@b"); err != nil {
		t.Errorf("Parse() with an @ in sentinel_password: %v", err)
	}
}

// A query that net/url cannot read (a stray %, a ;) must not be dropped in
// silence: the sentinel password in it would be ignored, and Redact would
// print it as written.
func TestParseUnreadableQuery(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"redis-sentinel://s1/m?sentinel_password=hun%ter2",
		"redis-sentinel://s1/m?sentinel_password=hun;ter2",
		"redis://h/0?dial_timeout=1s;pool_size=3",
		"redis://:hun%zzter2@h/0",
	} {
		_, err := Parse(raw)
		if err == nil {
			t.Errorf("Parse(%q) = nil error, want the query refused", raw)
		} else if strings.Contains(err.Error(), "ter2") || strings.Contains(err.Error(), "%zz") {
			t.Errorf("Parse(%q) error repeats part of the password: %v", raw, err)
		}
		if got := Redact(raw); strings.Contains(got, "ter2") {
			t.Errorf("Redact(%q) = %q shows the password", raw, got)
		}
	}
}
