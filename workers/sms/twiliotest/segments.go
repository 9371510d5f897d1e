package twiliotest

import (
	"strings"
	"unicode/utf16"
)

// gsmBasic and gsmExtended are the GSM 03.38 alphabet: basic characters
// take one septet, extended ones two (escape + character).
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtended = "^{}\\[~]|€\f"
)

// Segments returns how many SMS segments body takes, as Twilio counts
// them: GSM-7 when every character is in the GSM alphabet (160 septets,
// 153 per segment when split), else UCS-2 (70 UTF-16 units, 67 when
// split). Slovak, Czech and Polish diacritics (č, ž, ł, ...) need UCS-2.
func Segments(body string) int {
	septets, gsm := 0, true
	for _, r := range body {
		switch {
		case strings.ContainsRune(gsmBasic, r):
			septets++
		case strings.ContainsRune(gsmExtended, r):
			septets += 2
		default:
			gsm = false
		}
	}
	if gsm {
		return split(septets, 160, 153)
	}
	return split(len(utf16.Encode([]rune(body))), 70, 67)
}

func split(units, single, part int) int {
	if units <= single {
		return 1
	}
	return (units + part - 1) / part
}
