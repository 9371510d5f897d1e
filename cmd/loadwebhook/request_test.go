package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shopworks/backoffice/workers/sms"
)

// TestRequestBuilder checks the fast builder against the slow, obvious
// way: the body is url.Values.Encode of the form, the signature is
// sms.Sign's and the daemon's validator accepts it, and the request parses
// with net/http's server reader.
func TestRequestBuilder(t *testing.T) {
	t.Parallel()
	o := options{url: "http://127.0.0.1:8080/webhooks/twilio/sms?x=1", signURL: "https://shop.example/webhooks/twilio/sms?x=1",
		token: "builder-token", phones: 1000, concurrency: 1}
	l, err := newLoad(o, cpuMeter{})
	if err != nil {
		t.Fatal(err)
	}
	b := newRequestBuilder(l, l.requestURI, l.host)
	v := sms.NewValidator(o.token, "https://shop.example")
	for _, n := range []uint64{0, 1, 9, 1234, 999_999, 1 << 40, ^uint64(0)} {
		raw := string(b.build(n))
		sig := b.signature()
		want := referenceForm(l, n)
		if got := l.form(n); !cmp.Equal(want, got) {
			t.Errorf("form(%d) (-want,+got):\n%s", n, cmp.Diff(want, got))
		}
		if wantSig := sms.Sign(o.token, o.signURL, want); sig != wantSig {
			t.Errorf("message %d: signature %s, sms.Sign %s", n, sig, wantSig)
		}
		if !v.Valid("/webhooks/twilio/sms", "x=1", want, sig) {
			t.Errorf("message %d: the daemon's validator refuses signature %s", n, sig)
		}

		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatalf("message %d: %v\n%s", n, err, raw)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != want.Encode() {
			t.Errorf("message %d: body\n%s\nwant url.Values.Encode\n%s", n, body, want.Encode())
		}
		form, err := sms.ReadForm(bytes.NewReader(body), req.Header.Get("Content-Type"), sms.MaxWebhookBody)
		if err != nil || !cmp.Equal(want, form) {
			t.Errorf("message %d: sms.ReadForm = %v, %v; want %v", n, form, err, want)
		}
		wantHead := map[string]string{sms.SignatureHeader: sig, sms.IdempotencyHeader: l.sid(n) + "-" + l.run,
			"Content-Type": "application/x-www-form-urlencoded"}
		for name, value := range wantHead {
			if got := req.Header.Get(name); got != value {
				t.Errorf("message %d: %s = %q, want %q", n, name, got, value)
			}
		}
		if req.Method != http.MethodPost || req.RequestURI != "/webhooks/twilio/sms?x=1" || req.Host != "127.0.0.1:8080" ||
			req.ContentLength != int64(len(body)) || req.ProtoMinor != 1 {
			t.Errorf("message %d: %s %s HTTP/1.%d, Host %s, length %d", n, req.Method, req.RequestURI, req.ProtoMinor, req.Host, req.ContentLength)
		}
	}
}

// TestBuildDoesNotAllocate checks that building a request reuses the
// builder's buffers (not parallel: AllocsPerRun counts every goroutine's).
func TestBuildDoesNotAllocate(t *testing.T) {
	l, err := newLoad(options{url: "http://127.0.0.1:8080/webhooks/twilio/sms", token: "t", phones: 1000}, cpuMeter{})
	if err != nil {
		t.Fatal(err)
	}
	b := newRequestBuilder(l, l.requestURI, l.host)
	if n := testing.AllocsPerRun(100, func() { b.build(77) }); n != 0 {
		t.Errorf("build allocates %v times per request, want 0", n)
	}
}

// referenceForm is the n-th message's form built the slow way, as the
// generator did before the fast builder.
func referenceForm(l *load, n uint64) url.Values {
	sid, from := fmt.Sprintf("SM%s%018x", l.run, n), fmt.Sprintf("+421905%06d", n%uint64(l.phones))
	return url.Values{
		"ToCountry": {"SK"}, "ToState": {""}, "SmsMessageSid": {sid}, "NumMedia": {"0"}, "ToCity": {""},
		"FromZip": {""}, "SmsSid": {sid}, "FromState": {""}, "SmsStatus": {"received"}, "FromCity": {""},
		"Body": {fmt.Sprintf("Load test message %d: is my parcel on its way?", n)}, "FromCountry": {"SK"},
		"To": {"+421233000000"}, "ToZip": {""}, "NumSegments": {"1"}, "MessageSid": {sid},
		"AccountSid": {"AC00000000000000000000000000000000"}, "From": {from}, "ApiVersion": {"2010-04-01"},
	}
}

func TestInboundFieldsSorted(t *testing.T) {
	t.Parallel()
	var names []string
	for _, f := range inboundFields {
		names = append(names, f.name)
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("inboundFields = %v, want sorted names, each once", names)
	}
}

func TestAppendQueryEscape(t *testing.T) {
	t.Parallel()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	for _, s := range []string{string(all), "+421905000001", "Load test message 7: is my parcel on its way?", "", "ľščť ~._-"} {
		if got, want := string(appendQueryEscape(nil, []byte(s))), url.QueryEscape(s); got != want {
			t.Errorf("appendQueryEscape(%q) = %q, want url.QueryEscape's %q", s, got, want)
		}
	}
}

func TestNewLoadURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, addr, host, uri string }{
		{"http://127.0.0.1:8080/webhooks/twilio/sms", "127.0.0.1:8080", "127.0.0.1:8080", "/webhooks/twilio/sms"},
		{"http://shop.example/hooks/sms?a=b", "shop.example:80", "shop.example", "/hooks/sms?a=b"},
		{"http://[::1]:9000/x", "[::1]:9000", "[::1]:9000", "/x"},
	} {
		l, err := newLoad(options{url: tc.url}, cpuMeter{})
		if err != nil || l.addr != tc.addr || l.host != tc.host || l.requestURI != tc.uri {
			t.Errorf("newLoad(%s): addr %q, host %q, request URI %q, %v; want %q, %q, %q", tc.url, l.addr, l.host, l.requestURI, err, tc.addr, tc.host, tc.uri)
		}
	}
	for _, bad := range []string{"https://shop.example/hooks/sms", "127.0.0.1:8080/x", "http:///x"} {
		if _, err := newLoad(options{url: bad}, cpuMeter{}); err == nil {
			t.Errorf("newLoad(%s): want an error", bad)
		}
	}
}

func BenchmarkBuildRequest(b *testing.B) {
	l, err := newLoad(options{url: "http://127.0.0.1:8080/webhooks/twilio/sms", token: "t", phones: 1000}, cpuMeter{})
	if err != nil {
		b.Fatal(err)
	}
	l.signURL = l.url
	rb := newRequestBuilder(l, l.requestURI, l.host)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rb.build(uint64(i))
	}
}

func BenchmarkBuildRequestNetURL(b *testing.B) {
	l, err := newLoad(options{url: "http://127.0.0.1:8080/webhooks/twilio/sms", token: "t", phones: 1000}, cpuMeter{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		form := referenceForm(l, uint64(i))
		_, _ = form.Encode(), sms.Sign("t", l.url, form)
	}
}
