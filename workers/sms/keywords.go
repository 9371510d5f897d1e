package sms

import (
	"strings"
	"unicode"
)

// Keyword is what an incoming message asks for: Twilio's STOP keywords, as
// DetectKeyword recognises them.
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

// longestKeyword is the longest keyword: a longer word is none.
const longestKeyword = len("UNSUBSCRIBE")

// maxKeywordBody bounds the work done on a long body: a body of more bytes
// is an ordinary message without being trimmed or scanned. It leaves room
// for a keyword with plenty of white space, invisible characters and
// punctuation around it ("  „STOP!!!“ \u200b").
const maxKeywordBody = 64

// DetectKeyword returns the keyword body is. The body must be the keyword
// alone, in any letter case (ASCII only: "ſtop" and "ＳＴＯＰ" are not
// STOP), with nothing but white space around it; an opt-out keyword (STOP,
// UNSUBSCRIBE, ...) and HELP/INFO may also have punctuation and symbols
// around them: "Stop!", "STOP.", "\"stop\"", "„Stop“", "UNSUBSCRIBE..."
// and "help?" count. A customer who writes "Stop!" wants no more messages,
// and Twilio's own blocking is exact-match only, so the shop is stricter
// towards itself than Twilio and honours the opt-out. An opt-in keyword
// (START, YES, UNSTOP) still needs the keyword alone with only white space
// around it: opting someone back in must be unambiguous, and "Start?" or
// "Yes!" may be a question or an answer to staff. A keyword inside a
// sentence ("STOP please", "please stop", "STOP STOP") is an ordinary
// message, which staff read, as is any body over maxKeywordBody bytes.
func DetectKeyword(body string) Keyword {
	if len(body) > maxKeywordBody {
		return KeywordNone
	}
	if k := wordKeyword(strings.TrimFunc(body, isBlank)); k != KeywordNone {
		return k
	}
	k := wordKeyword(strings.TrimFunc(body, isAround))
	if k == KeywordOptIn {
		return KeywordNone
	}
	return k
}

// wordKeyword returns the keyword word is, in any ASCII letter case.
func wordKeyword(word string) Keyword {
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

// KeywordText returns the keyword of a body DetectKeyword recognised, in
// upper case and without what surrounds it: "Stop!" gives "STOP".
func KeywordText(body string) string {
	return strings.ToUpper(strings.TrimFunc(body, isAround))
}

// isAround reports what may surround an opt-out or help keyword: white
// space (isBlank), punctuation (. ! ? " ' „ “ » « … -) and symbols.
func isAround(r rune) bool {
	return isBlank(r) || unicode.IsPunct(r) || unicode.IsSymbol(r)
}

// isBlank reports white space and the invisible characters phones add
// around a message (zero-width space, byte-order mark).
func isBlank(r rune) bool {
	return unicode.IsSpace(r) || r == '\u200b' || r == '\ufeff'
}
