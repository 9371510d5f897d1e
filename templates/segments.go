package templates

import "strings"

// SMS encodings Segments reports.
const (
	EncodingGSM7 = "GSM-7"
	EncodingUCS2 = "UCS-2"
)

// GSM 03.38: the basic character set beyond printable ASCII (with LF and
// CR), and the extension table, whose characters take two septets (an
// escape and the character). Of printable ASCII only '`' is in neither;
// '[', '\', ']', '^', '{', '|', '}' and '~' are in the extension table.
const (
	gsmBasicMore = "£¥èéùìòÇ\nØø\rÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà"
	gsmExtension = "\f^{}\\[~]|€"
)

// Segment sizes: a message that fits one segment may use all of it; a
// longer one is split into parts that each lose room to the concatenation
// header.
const (
	gsmSingle, gsmPart   = 160, 153 // septets
	ucs2Single, ucs2Part = 70, 67   // UTF-16 code units
)

// Segments returns how an SMS body is sent: its encoding ("GSM-7" when
// every character is in the GSM 03.38 basic set or its extension table,
// else "UCS-2"), the number of segments, and its length in the encoding's
// units (septets, an extension character counting two; or UTF-16 code
// units, a character outside the Basic Multilingual Plane such as an emoji
// counting two). A single segment holds 160 septets or 70 units; a longer
// message is split into parts of 153 or 67, never splitting an extension
// character or a surrogate pair. An empty body has 0 segments.
func Segments(body string) (encoding string, segments, chars int) {
	for _, r := range body {
		if gsmWidth(r) == 0 {
			segments, chars = count(body, utf16Width, ucs2Single, ucs2Part)
			return EncodingUCS2, segments, chars
		}
	}
	segments, chars = count(body, gsmWidth, gsmSingle, gsmPart)
	return EncodingGSM7, segments, chars
}

// gsmWidth returns the septets r takes in GSM 03.38: 1 for the basic set,
// 2 for the extension table, 0 when r is in neither.
func gsmWidth(r rune) int {
	switch {
	case strings.ContainsRune(gsmExtension, r):
		return 2
	case r >= ' ' && r <= '~' && r != '`':
		return 1
	case strings.ContainsRune(gsmBasicMore, r):
		return 1
	}
	return 0
}

// utf16Width returns the UTF-16 code units r takes.
func utf16Width(r rune) int {
	if r > 0xFFFF {
		return 2
	}
	return 1
}

// count returns the segments and units of body, whose characters take
// width units each: one segment if they fit single, else parts of at most
// part units, a character never straddling two parts.
func count(body string, width func(rune) int, single, part int) (segments, chars int) {
	for _, r := range body {
		chars += width(r)
	}
	switch {
	case chars == 0:
		return 0, 0
	case chars <= single:
		return 1, chars
	}
	segments, used := 1, 0
	for _, r := range body {
		n := width(r)
		if used+n > part {
			segments++
			used = 0
		}
		used += n
	}
	return segments, chars
}
