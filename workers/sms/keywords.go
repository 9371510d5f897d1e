package sms

import (
	"strings"
	"unicode"
)

// Keyword is what an incoming message asks for, as Twilio's STOP filtering
// understands it.
type Keyword int

// Keywords of incoming messages.
const (
	KeywordNone   Keyword = iota // an ordinary message for staff
	KeywordOptOut                // STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT
	KeywordOptIn                 // START, YES, UNSTOP
	KeywordHelp                  // HELP, INFO
)

// String returns the keyword's name as logged and shown on the timeline.
func (k Keyword) String() string {
	switch k {
	case KeywordOptOut:
		return "opt-out"
	case KeywordOptIn:
		return "opt-in"
	case KeywordHelp:
		return "help"
	default:
		return "none"
	}
}

// keywordOf returns what the upper-case word asks for.
func keywordOf(word string) Keyword {
	switch word {
	case "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT":
		return KeywordOptOut
	case "START", "YES", "UNSTOP":
		return KeywordOptIn
	case "HELP", "INFO":
		return KeywordHelp
	}
	return KeywordNone
}

// longestKeyword bounds the work done on a long body.
const longestKeyword = len("UNSUBSCRIBE")

// DetectKeyword returns the keyword body is, following Twilio: the message
// must be the keyword alone, in any letter case (ASCII only: "ſtop" is
// not STOP), with nothing around it but white space. "STOP please",
// "STOP." or "Please stop" are ordinary messages, which staff read.
func DetectKeyword(body string) Keyword {
	word := strings.TrimFunc(body, isBlank)
	if len(word) > longestKeyword {
		return KeywordNone
	}
	var up [longestKeyword]byte
	for i := 0; i < len(word); i++ {
		c := word[i]
		switch {
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case 'A' <= c && c <= 'Z':
		default:
			return KeywordNone
		}
		up[i] = c
	}
	return keywordOf(string(up[:len(word)]))
}

// isBlank reports white space and the invisible characters phones add
// around a message (zero-width space, byte-order mark).
func isBlank(r rune) bool {
	return unicode.IsSpace(r) || r == '\u200b' || r == '\ufeff'
}
