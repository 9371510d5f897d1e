package web

import (
	"io"
	"net/http"
	"strings"
)

// registerUnsubscribe serves the one-click unsubscribe links of campaign
// e-mails, /u/<token> (see campaigns.Unsubscriber). GET shows a page with a
// button and changes nothing, because mail scanners open links; POST
// records the opt-out (campaigns.Unsubscriber.Apply): from that page, or
// straight from the mail client (RFC 8058 body "List-Unsubscribe=One-Click").
func (s *Server) registerUnsubscribe() {
	s.open("GET /u/{token}", s.unsubscribeGet)
	s.open("POST /u/{token}", s.unsubscribePost)
}

// unsubscribeView is what pages/unsubscribe.html shows.
type unsubscribeView struct {
	Campaign string
	Done     bool   // the opt-out is recorded
	Problem  string // why the link does not work
}

// maxUnsubscribeBody bounds the form a POST may carry.
const maxUnsubscribeBody = 4 << 10

func (s *Server) unsubscribeGet(w http.ResponseWriter, r *http.Request) {
	_, campaign, err := s.unsubscribe.Verify(r.PathValue("token"))
	if err != nil {
		s.render(w, http.StatusNotFound, "unsubscribe.html", unsubscribeView{Problem: "This unsubscribe link is not valid. Please use the link from the e-mail you received."})
		return
	}
	s.render(w, http.StatusOK, "unsubscribe.html", unsubscribeView{Campaign: campaign})
}

func (s *Server) unsubscribePost(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if _, _, err := s.unsubscribe.Verify(token); err != nil {
		s.render(w, http.StatusNotFound, "unsubscribe.html", unsubscribeView{Problem: "This unsubscribe link is not valid. Please use the link from the e-mail you received."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUnsubscribeBody)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	oneClick := strings.TrimSpace(string(body)) == "List-Unsubscribe=One-Click"
	campaign, err := s.unsubscribe.Apply(r.Context(), s.customers, token, s.now())
	if err != nil {
		s.log.ErrorContext(r.Context(), "unsubscribe: record opt-out", "campaign", campaign, "err", err)
		w.Header().Set("Retry-After", "60")
		s.render(w, http.StatusServiceUnavailable, "unsubscribe.html", unsubscribeView{Campaign: campaign, Problem: "We could not record this right now. Please try again in a minute."})
		return
	}
	s.log.InfoContext(r.Context(), "unsubscribed", "campaign", campaign, "one_click", oneClick)
	if oneClick {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "unsubscribed\n")
		return
	}
	s.render(w, http.StatusOK, "unsubscribe.html", unsubscribeView{Campaign: campaign, Done: true})
}
