package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

const (
	defaultURL       = "http://127.0.0.1:8080"
	defaultTokenFile = "./var/operator.token"
	// requestTimeout bounds every request but uploads, which take as long
	// as the file needs.
	requestTimeout = 30 * time.Second
	maxAnswerBytes = 16 << 20
)

// client talks to the daemon's REST API.
type client struct {
	base     *url.URL
	token    string
	tokenSrc string // where the token came from, for error hints
	http     *http.Client
}

// newClient builds the client from the global flags and the environment.
func (a *app) newClient() (*client, error) {
	raw := cmp.Or(a.globals.url, a.getenv("BACKOFFICE_URL"), defaultURL)
	base, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		// Neither raw nor err (which quotes it) is printed: the URL may
		// hold a password.
		return nil, errors.New("daemon URL: not a valid URL: want http(s)://host:port (BACKOFFICE_URL or --url)")
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("daemon URL %q: want http(s)://host:port (BACKOFFICE_URL or --url)", base.Redacted())
	}
	token, src, err := a.token()
	if err != nil {
		return nil, err
	}
	c := &client{base: base, token: token, tokenSrc: src, http: &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		// The API never redirects: a redirect means the path named another
		// resource (a NAME of "." say) or the URL is not the daemon's, and
		// following it would print the wrong data as if it were the answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	a.clients = append(a.clients, c)
	return c, nil
}

// token finds the API token: --token-file, then $BACKOFFICE_TOKEN, then
// ./var/operator.token when it exists. No token is not an error here: the
// daemon's 401 then says what to do.
func (a *app) token() (token, source string, err error) {
	if f := a.globals.tokenFile; f != "" {
		return readToken(f)
	}
	if t := strings.TrimSpace(a.getenv("BACKOFFICE_TOKEN")); t != "" {
		return t, "BACKOFFICE_TOKEN", nil
	}
	if _, err := os.Stat(defaultTokenFile); err == nil {
		return readToken(defaultTokenFile)
	}
	return "", "", nil
}

func readToken(path string) (string, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", "", fmt.Errorf("token file %s: empty", path)
	}
	return t, path, nil
}

// request is one API call.
type request struct {
	method string
	path   string // escaped path, e.g. "/api/customers/" + url.PathEscape(ref)
	query  url.Values
	body   io.Reader
	size   int64 // body length, -1 unknown
	ctype  string
	upload bool // no requestTimeout
}

// do sends req and returns the body of a 2xx answer; any other answer is an
// *apiError.
func (c *client) do(ctx context.Context, req request) ([]byte, error) {
	if !req.upload {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	u := *c.base
	u.RawPath = c.base.Path + req.path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = req.query.Encode()
	hr, err := http.NewRequestWithContext(ctx, req.method, u.String(), req.body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if req.body != nil {
		hr.ContentLength = req.size
		hr.Header.Set("Content-Type", req.ctype)
	}
	hr.Header.Set("Accept", "application/json")
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, c.transportError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("read answer of %s: %w", c.base.Host, err)
	}
	if resp.StatusCode/100 == 3 {
		to := "nowhere (no Location)"
		if loc, err := resp.Location(); err == nil {
			to = loc.Redacted()
		}
		return nil, fmt.Errorf("the daemon answered a redirect to %s (HTTP %d): refusing to follow it", to, resp.StatusCode)
	}
	if resp.StatusCode/100 != 2 {
		return nil, c.newAPIError(resp.StatusCode, body)
	}
	return body, nil
}

// getJSON GETs path, decodes the answer into out and returns it raw too,
// for --json.
func (c *client) getJSON(ctx context.Context, path string, query url.Values, out any) ([]byte, error) {
	body, err := c.do(ctx, request{method: http.MethodGet, path: path, query: query})
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, fmt.Errorf("answer of %s: %w", path, err)
	}
	return body, nil
}

func (c *client) transportError(err error) error {
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer from %s within %s", c.base.Redacted(), requestTimeout)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("cannot reach the daemon at %s (is backofficed running? set BACKOFFICE_URL): %v", c.base.Redacted(), err)
}

// apiError is an answer other than 2xx.
type apiError struct {
	Status  int
	Message string // the daemon's "error"
	Field   string
	TaskID  string // of a 409
	hint    string
}

func (c *client) newAPIError(status int, body []byte) *apiError {
	var e struct {
		Error  string `json:"error"`
		Field  string `json:"field"`
		TaskID string `json:"task_id"`
		Need   string `json:"need_role"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(bytes.ToValidUTF8(body[:min(len(body), 200)], nil)))
	}
	ae := &apiError{Status: status, Message: e.Error, Field: e.Field, TaskID: e.TaskID}
	switch {
	case status == http.StatusUnauthorized && c.token == "":
		ae.hint = "no API token: set BACKOFFICE_TOKEN or pass --token-file (make run writes ./var/operator.token)"
	case status == http.StatusUnauthorized:
		ae.hint = "the daemon refused the API token from " + c.tokenSrc + ": set BACKOFFICE_TOKEN or --token-file to a valid token"
	case status == http.StatusForbidden && e.Need != "": // the role is too weak: another token helps
		ae.hint = e.Error + " (set BACKOFFICE_TOKEN or --token-file to one)"
	}
	return ae
}

func (e *apiError) Error() string {
	switch {
	case e.hint != "":
		return e.hint
	case e.Status == http.StatusNotFound:
		return "not found"
	case e.Status >= 500:
		return fmt.Sprintf("daemon error (HTTP %d): %s", e.Status, e.Message)
	}
	return e.Message
}

// isStatus reports whether err is an answer with HTTP status code.
func isStatus(err error, code int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == code
}
