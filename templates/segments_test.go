package templates

import (
	"strings"
	"testing"
)

func TestSegments(t *testing.T) {
	t.Parallel()
	a, y := "a", "ý"
	tests := []struct {
		name     string
		body     string
		encoding string
		segments int
		chars    int
	}{
		{"empty", "", EncodingGSM7, 0, 0},
		{"one char", "a", EncodingGSM7, 1, 1},
		{"160 ASCII", strings.Repeat(a, 160), EncodingGSM7, 1, 160},
		{"161 ASCII", strings.Repeat(a, 161), EncodingGSM7, 2, 161},
		{"306 ASCII: two full parts", strings.Repeat(a, 306), EncodingGSM7, 2, 306},
		{"307 ASCII", strings.Repeat(a, 307), EncodingGSM7, 3, 307},
		{"extension chars count double", "€[]{}|^~\\", EncodingGSM7, 1, 18},
		{"form feed is an extension char", "\f", EncodingGSM7, 1, 2},
		{"159 + euro overflows one segment", strings.Repeat(a, 159) + "€", EncodingGSM7, 2, 161},
		{"158 + euro fits", strings.Repeat(a, 158) + "€", EncodingGSM7, 1, 160},
		{"escape never split across parts", strings.Repeat(a, 152) + "€" + strings.Repeat(a, 152), EncodingGSM7, 3, 306},
		{"GSM basic accents", "Café Müller, Ñandu, ¿Qué? ¡Si! Ça Øre Åse Æble ß § à è ù ì ò É Ä Ö Ü ä ö ü ñ ø å æ", EncodingGSM7, 1, 82},
		{"greek capitals and symbols", "ΔΦΓΛΩΠΨΣΘΞ @£$¥¤_", EncodingGSM7, 1, 17},
		{"line breaks", "a\nb\r\nc", EncodingGSM7, 1, 6},
		{"backtick is not GSM", "`", EncodingUCS2, 1, 1},
		{"lower-case c cedilla is not GSM", "ç", EncodingUCS2, 1, 1},
		{"acute i and u are not GSM (grave ones are)", "Sí, ú", EncodingUCS2, 1, 5},
		{"Slovak", "Dobrý deň", EncodingUCS2, 1, 9},
		{"Czech", "Příliš žluťoučký kůň", EncodingUCS2, 1, 20},
		{"Polish", "Zażółć gęślą jaźń", EncodingUCS2, 1, 17},
		{"euro is one unit in UCS-2", "Cena 5 € – zľava", EncodingUCS2, 1, 16},
		{"70 UCS-2", strings.Repeat(y, 70), EncodingUCS2, 1, 70},
		{"71 UCS-2", strings.Repeat(y, 71), EncodingUCS2, 2, 71},
		{"134 UCS-2: two full parts", strings.Repeat(y, 134), EncodingUCS2, 2, 134},
		{"135 UCS-2", strings.Repeat(y, 135), EncodingUCS2, 3, 135},
		{"one diacritic turns all to UCS-2", strings.Repeat(a, 100) + "č", EncodingUCS2, 2, 101},
		{"emoji is two UTF-16 units", "😀", EncodingUCS2, 1, 2},
		{"35 emoji fill one segment", strings.Repeat("😀", 35), EncodingUCS2, 1, 70},
		{"36 emoji", strings.Repeat("😀", 36), EncodingUCS2, 2, 72},
		{"surrogate pair never split across parts", strings.Repeat(y, 66) + "😀" + strings.Repeat(y, 66), EncodingUCS2, 3, 134},
	}
	for _, tt := range tests {
		enc, segments, chars := Segments(tt.body)
		if enc != tt.encoding || segments != tt.segments || chars != tt.chars {
			t.Errorf("%s: Segments(%q) = %s, %d, %d; want %s, %d, %d",
				tt.name, tt.body, enc, segments, chars, tt.encoding, tt.segments, tt.chars)
		}
	}
}

// TestGSMBasicSetSize checks the table against GSM 03.38: 128 code points
// in the basic set (one is the escape to the extension table), 10 in the
// extension table.
func TestGSMBasicSetSize(t *testing.T) {
	t.Parallel()
	basic, ext := 0, 0
	for r := rune(0); r < 0x10000; r++ {
		switch gsmWidth(r) {
		case 1:
			basic++
		case 2:
			ext++
		}
	}
	if basic != 127 || ext != 10 {
		t.Errorf("basic set has %d characters (want 127 plus the escape), extension table %d (want 10)", basic, ext)
	}
}
