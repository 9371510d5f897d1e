package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// apiError is the body of every JSON error. Field names the invalid input
// field, when there is one; NeedRole the role a 403 for a too weak token
// needs (other 403s have none: another token would not help).
type apiError struct {
	Error    string `json:"error"`
	Field    string `json:"field,omitempty"`
	NeedRole string `json:"need_role,omitempty"`
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}

// writeError writes {"error": ...} with status.
func writeError(w http.ResponseWriter, status int, format string, a ...any) {
	writeJSON(w, status, apiError{Error: fmt.Sprintf(format, a...)})
}

// writeFieldError writes a 400 naming the invalid field.
func writeFieldError(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusBadRequest, apiError{Error: msg, Field: field})
}

// errTrailingData is a request body with more than one JSON value.
var errTrailingData = errors.New("trailing data after the JSON body")

// endOfJSON returns errTrailingData unless dec, having decoded a value, has
// nothing but white space left. dec.More cannot tell: it is false before a
// stray '}' or ']'.
func endOfJSON(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return errTrailingData
	}
	return nil
}
