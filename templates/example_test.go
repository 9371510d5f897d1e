package templates_test

import (
	"fmt"

	"github.com/shopworks/backoffice/templates"
)

func ExampleSet_RenderSMS() {
	set, err := templates.Load(templates.Options{
		FallbackLanguage: "en",
		Shop:             templates.ShopData{Name: "Kvetinka", URL: "https://kvetinka.sk"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	customer := templates.CustomerData{ID: "c-1001", Name: "Ján Novák", Phone: "+421901234567"}

	// A Slovak customer: diacritics make the SMS UCS-2, 70 characters a segment.
	sms, err := set.RenderSMS("promo", "sk-SK", templates.Data{Customer: customer, Campaign: "spring-sale"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sms.Body)
	fmt.Println(sms.Lang, sms.Encoding, sms.Segments, "segments,", sms.Chars, "characters")

	// No German file: the fallback language answers, in GSM-7.
	sms, err = set.RenderSMS("promo", "de", templates.Data{Customer: customer, Campaign: "spring-sale"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sms.Lang, sms.Encoding, sms.Segments, "segment,", sms.Chars, "characters")
	// Output:
	// Kvetinka: Jarný výpredaj! Do nedele zľavy až 30 % s kódom JAR30. https://kvetinka.sk
	// Odhlásenie: STOP
	// sk UCS-2 2 segments, 101 characters
	// en GSM-7 1 segment, 111 characters
}
