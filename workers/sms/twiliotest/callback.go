package twiliotest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Sign returns the X-Twilio-Signature of a form POST of params to
// webhookURL: base64(HMAC-SHA1(authToken, URL + each name and value,
// sorted by name)). It matches sms.Sign (a test checks); it is repeated
// here so that package sms's own tests can import twiliotest.
func Sign(authToken, webhookURL string, params url.Values) string {
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(webhookURL))
	for _, name := range names {
		for _, v := range params[name] {
			mac.Write([]byte(name))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// PostSigned posts params to webhookURL as Twilio does: form-encoded,
// signed with authToken in X-Twilio-Signature. It returns the status code
// and body of the answer.
func PostSigned(t testing.TB, webhookURL, authToken string, params url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, webhookURL, strings.NewReader(params.Encode()))
	if err != nil {
		t.Fatalf("twiliotest: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", Sign(authToken, webhookURL, params))
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("twiliotest: post %s: %v", webhookURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body)
}

// SendStatusCallback posts a signed delivery status callback for message
// sid to callbackURL, as Twilio does when the status changes ("sent",
// "delivered", "undelivered", "failed"); errorCode 0 sends no ErrorCode.
// It returns the status code of the answer.
func SendStatusCallback(t testing.TB, callbackURL, authToken, sid, status string, errorCode int) int {
	t.Helper()
	params := StatusParams(sid, status, errorCode)
	code, _ := PostSigned(t, callbackURL, authToken, params)
	return code
}

// StatusParams returns the form fields of a status callback, for tests
// that add fields (To, From, AccountSid) before PostSigned.
func StatusParams(sid, status string, errorCode int) url.Values {
	params := url.Values{
		"MessageSid": {sid}, "SmsSid": {sid},
		"MessageStatus": {status}, "SmsStatus": {status},
		"ApiVersion": {"2010-04-01"},
	}
	if errorCode != 0 {
		params.Set("ErrorCode", strconv.Itoa(errorCode))
	}
	return params
}
