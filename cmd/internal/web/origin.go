package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// originCheck refuses cross-site browser requests that change state: a page
// on another site must not be able to use a visitor's session cookie.
type originCheck struct {
	cop    *http.CrossOriginProtection
	public *url.URL // nil without a PublicURL
}

// newOriginCheck trusts publicURL's origin (besides the request's own Host)
// and reports whether it is https, so that cookies are marked Secure.
func newOriginCheck(publicURL string) (*originCheck, bool, error) {
	oc := &originCheck{cop: http.NewCrossOriginProtection()}
	if publicURL == "" {
		return oc, false, nil
	}
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, false, fmt.Errorf("web: options: PublicURL %q: want an absolute http(s) URL", publicURL)
	}
	oc.public = &url.URL{Scheme: u.Scheme, Host: u.Host}
	if err := oc.cop.AddTrustedOrigin(oc.public.String()); err != nil {
		return nil, false, fmt.Errorf("web: options: PublicURL %q: %w", publicURL, err)
	}
	return oc, u.Scheme == "https", nil
}

// check passes safe methods. An unsafe one must come from our origin: by
// Sec-Fetch-Site or Origin (net/http's CrossOriginProtection), or, from a
// browser that sends neither, by a Referer on our origin.
func (oc *originCheck) check(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if err := oc.cop.Check(r); err != nil {
		return fmt.Errorf("cross-origin request refused: %w", err)
	}
	if r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Origin") != "" {
		return nil
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	if err != nil || ref.Host == "" {
		return errors.New("cross-origin request refused: no Origin or Referer header")
	}
	if strings.EqualFold(ref.Host, r.Host) || (oc.public != nil && ref.Scheme == oc.public.Scheme && strings.EqualFold(ref.Host, oc.public.Host)) {
		return nil
	}
	return fmt.Errorf("cross-origin request refused: Referer %s is not this site", ref.Scheme+"://"+ref.Host)
}
