package sms

import (
	"strings"
	"testing"
)

func TestDetectKeyword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want Keyword
	}{
		{"STOP", KeywordOptOut}, {"stop", KeywordOptOut}, {"Stop", KeywordOptOut}, {"  sToP \n", KeywordOptOut},
		{"STOPALL", KeywordOptOut}, {"unsubscribe", KeywordOptOut}, {"Cancel", KeywordOptOut}, {"END", KeywordOptOut},
		{"quit", KeywordOptOut}, {"REVOKE", KeywordOptOut}, {"optout", KeywordOptOut}, {"\u200bSTOP\ufeff", KeywordOptOut},
		{"\tSTOP\r\n", KeywordOptOut},
		{"START", KeywordOptIn}, {"yes", KeywordOptIn}, {"Unstop", KeywordOptIn},
		{"HELP", KeywordHelp}, {"info", KeywordHelp},
		{"", KeywordNone}, {"   ", KeywordNone}, {"STOP please", KeywordNone}, {"please stop", KeywordNone},
		{"S TOP", KeywordNone}, {"OPT OUT", KeywordNone},
		{"ſtop", KeywordNone}, {"STOP\x00", KeywordNone}, {"STOPP", KeywordNone}, {"UNSUBSCRIBED", KeywordNone},
		{"ＳＴＯＰ", KeywordNone}, {"Hello, is my order shipped?", KeywordNone}, {strings.Repeat("STOP", 1000), KeywordNone},
		{"NO", KeywordNone}, {"Y", KeywordNone},
		// an opt-out or help keyword may have punctuation and symbols around it
		{"STOP.", KeywordOptOut}, {"Stop!", KeywordOptOut}, {"stop!!", KeywordOptOut}, {`"STOP"`, KeywordOptOut},
		{"STOP?", KeywordOptOut}, {"UNSUBSCRIBE.", KeywordOptOut}, {"'stop'", KeywordOptOut}, {"„Stop“", KeywordOptOut},
		{"»STOP«", KeywordOptOut}, {"STOP…", KeywordOptOut}, {" Stop ! ", KeywordOptOut}, {"\u200bSTOP.\ufeff", KeywordOptOut},
		{"-end-", KeywordOptOut}, {"*Cancel*", KeywordOptOut}, {"Quit!!!", KeywordOptOut}, {"STOP ¡¿", KeywordOptOut},
		{"STOP =)", KeywordOptOut}, {"(stopall)", KeywordOptOut}, {"help?", KeywordHelp}, {"INFO.", KeywordHelp},
		{"¿Help?", KeywordHelp},
		// but still only the keyword alone
		{"STOP. please", KeywordNone}, {"Stop, please!", KeywordNone}, {"STOP STOP", KeywordNone}, {"STOP!STOP", KeywordNone},
		{"S.T.O.P", KeywordNone}, {"STOP1", KeywordNone}, {"STOP.\x00", KeywordNone}, {"Stopp!", KeywordNone},
		{"ſtop!", KeywordNone}, {"ＳＴＯＰ！", KeywordNone}, {"STOP." + strings.Repeat("!", 1000), KeywordNone},
		{strings.Repeat(" ", 100) + "STOP", KeywordNone},
		// an opt-in keyword needs white space alone around it
		{"Start?", KeywordNone}, {"START.", KeywordNone}, {"Yes!", KeywordNone}, {`"yes"`, KeywordNone},
		{"unstop!", KeywordNone}, {" Start\n", KeywordOptIn}, {"\u200bYES\ufeff", KeywordOptIn},
	}
	for _, tt := range tests {
		if got := DetectKeyword(tt.body); got != tt.want {
			t.Errorf("DetectKeyword(%q) = %v, want %v", tt.body, got, tt.want)
		}
	}
}

func TestKeywordString(t *testing.T) {
	t.Parallel()
	for k, want := range map[Keyword]string{KeywordNone: "none", KeywordOptOut: "opt-out", KeywordOptIn: "opt-in", KeywordHelp: "help"} {
		if got := k.String(); got != want {
			t.Errorf("Keyword(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

// FuzzKeyword checks that DetectKeyword never panics and finds a keyword
// only in a message that is that keyword alone, in some letter case, with
// white space around it, or also punctuation and symbols for an opt-out or
// help keyword.
func FuzzKeyword(f *testing.F) {
	for _, s := range []string{"STOP", " stop ", "START", "help", "STOP please", "ſtop", "\u200bINFO", "", "Stop!", "Start?", "„STOP“"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		k := DetectKeyword(body)
		if k == KeywordNone {
			return
		}
		if len(body) > maxKeywordBody {
			t.Fatalf("DetectKeyword(%q) = %v for a body over %d bytes", body, k, maxKeywordBody)
		}
		around := isAround
		if k == KeywordOptIn {
			around = isBlank
		}
		word := strings.ToUpper(strings.TrimFunc(body, around))
		if keywordOf(word) != k {
			t.Fatalf("DetectKeyword(%q) = %v, but the trimmed word %q is not that keyword", body, k, word)
		}
		for _, r := range strings.TrimFunc(body, around) {
			if r > 'z' {
				t.Fatalf("DetectKeyword(%q) = %v for a word with non-ASCII rune %q", body, k, r)
			}
		}
	})
}
