package twiliotest

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// createMessage answers POST .../Messages.json as Twilio does.
func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate", "")
		return
	}
	if r.PathValue("AccountSid") != s.AccountSID {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 20001, "Could not parse the request body", "")
		return
	}
	n := s.countRequest()
	if !s.wait(r) {
		return
	}
	to := r.PostForm.Get("To")
	if s.opts.Fail != nil {
		if status, code, retryAfter := s.opts.Fail(n, to); status != 0 {
			writeFailure(w, status, code, retryAfter)
			return
		}
	}
	fault := NoFault
	if s.opts.Fault != nil {
		fault = s.opts.Fault(n, to)
	}
	if fault == DropBeforeCreate {
		drop(w)
		return
	}
	if status, code, msg := s.check(r.PostForm); status != 0 {
		writeError(w, status, code, msg, "")
		return
	}
	m := s.record(r.PostForm)
	switch fault {
	case DropAfterCreate:
		drop(w)
	case TruncatedJSON, ShortBody:
		body, _ := json.Marshal(resource(m, time.Now()))
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if fault == ShortBody {
			// net/http closes the connection when the handler wrote less
			// than it declared.
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body[:len(body)/2])
	default:
		writeJSON(w, http.StatusCreated, resource(m, time.Now()))
	}
}

// drop closes the request's connection without an answer.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic("twiliotest: cannot drop the connection: " + err.Error())
	}
	_ = conn.Close()
}

func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	return ok && subtle.ConstantTimeCompare([]byte(user), []byte(s.AccountSID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.AuthToken)) == 1
}

func (s *Server) countRequest() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	return s.requests
}

// wait holds the request for Options.Latency; false when the client or the
// server gave up first.
func (s *Server) wait(r *http.Request) bool {
	if s.opts.Latency <= 0 {
		return true
	}
	timer := time.NewTimer(s.opts.Latency)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

// check validates the form like Twilio, with Twilio's error codes.
func (s *Server) check(f url.Values) (status, code int, msg string) {
	to, body := f.Get("To"), f.Get("Body")
	switch {
	case to == "":
		return 400, 21604, "A 'To' phone number is required."
	case !e164.MatchString(to):
		return 400, 21211, "Invalid 'To' Phone Number: " + to
	case f.Get("From") == "" && f.Get("MessagingServiceSid") == "":
		return 400, 21603, "A 'From' phone number is required."
	case body == "":
		return 400, 21602, "Message body is required."
	case utf8.RuneCountInString(body) > 1600:
		return 400, 21617, "The concatenated message body exceeds the 1600 character limit."
	case s.optedOut[to]:
		return 400, 21610, "Attempt to send to unsubscribed recipient"
	}
	if cb := f.Get("StatusCallback"); cb != "" {
		if u, err := url.Parse(cb); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return 400, 21609, "Invalid StatusCallback url"
		}
	}
	return 0, 0, ""
}

func (s *Server) record(f url.Values) Message {
	m := Message{
		SID: "SM" + randomHex(16), AccountSID: s.AccountSID,
		To: f.Get("To"), From: f.Get("From"), MessagingServiceSID: f.Get("MessagingServiceSid"),
		Body: f.Get("Body"), StatusCallback: f.Get("StatusCallback"),
		NumSegments: Segments(f.Get("Body")), Form: f,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	return m
}

// resource is the message resource Twilio returns on creation.
func resource(m Message, now time.Time) map[string]any {
	date := now.UTC().Format(time.RFC1123Z)
	uri := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s", m.AccountSID, m.SID)
	status, from := "queued", any(m.From)
	if m.From == "" {
		status, from = "accepted", nil // Twilio picks the sender later
	}
	var service any
	if m.MessagingServiceSID != "" {
		service = m.MessagingServiceSID
	}
	return map[string]any{
		"account_sid": m.AccountSID, "api_version": "2010-04-01", "body": m.Body,
		"date_created": date, "date_sent": nil, "date_updated": date,
		"direction": "outbound-api", "error_code": nil, "error_message": nil,
		"from": from, "messaging_service_sid": service, "num_media": "0",
		"num_segments": strconv.Itoa(m.NumSegments), "price": nil, "price_unit": "USD",
		"sid": m.SID, "status": status, "to": m.To, "uri": uri + ".json",
		"subresource_uris": map[string]string{"media": uri + "/Media.json", "feedback": uri + "/Feedback.json"},
	}
}

func writeFailure(w http.ResponseWriter, status, code int, retryAfter string) {
	if code != 0 {
		writeError(w, status, code, http.StatusText(status), retryAfter)
		return
	}
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><h1>%[1]d %[2]s</h1></body></html>\n",
		status, http.StatusText(status))
}

// writeError writes Twilio's JSON error body.
func writeError(w http.ResponseWriter, status, code int, msg, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, map[string]any{
		"code": code, "message": msg, "status": status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
