// Package templates renders the messages the daemon sends — campaign e-mails
// and SMS, and automatic SMS replies — in the customer's language.
//
// # Files
//
// A template is a directory named after it, holding one file per language
// and channel:
//
//	<name>/<lang>.email.tmpl   an e-mail: subject, plain-text body, HTML body
//	<name>/<lang>.sms.tmpl     an SMS: one body
//
// <name> is 1-63 lower-case letters, digits or '-' (what a campaign's
// "template" field names); <lang> is a two-letter lower-case ISO 639-1 code
// such as sk, cs, pl or en. The shipped files are embedded in the binary
// from templates/files/. When Options.Dir (BACKOFFICE_TEMPLATES_DIR) is set,
// the files under it, laid out the same way, are read as well: a file there
// replaces the embedded one of the same name, language and channel, or adds
// a new one. Entries whose name starts with '.' are ignored (editor swap
// files, the internals of a mounted Kubernetes ConfigMap); any other file or
// directory that does not fit the layout is an error.
//
// Files are UTF-8 text in Go template syntax (text/template). An e-mail
// file defines three blocks:
//
//	{{define "subject"}}Jarný výpredaj: zľavy až 30 %{{end}}
//
//	{{define "text"}}
//	Dobrý deň{{with .Customer.FirstName}}, {{.}}{{end}},
//	...
//	Odhlásiť sa: {{.UnsubscribeURL}}
//	{{end}}
//
//	{{define "html"}}
//	<p>Dobrý deň{{with .Customer.FirstName}}, {{.}}{{end}},</p>
//	...
//	{{end}}
//
// subject and text are plain text. html is parsed with html/template, so
// every value is escaped for the place it appears in: a customer called
// "<script>" stays text, a "javascript:" link is neutralised. Nothing but
// white space and {{/* comments */}} may stand outside the blocks; further
// blocks may be defined in the same file and called with
// {{template "footer" .}}.
//
// An SMS file is the body: the whole file is the template.
//
// Every rendered part is trimmed of leading and trailing white space, so a
// block may begin and end on lines of its own. A subject must render to one
// non-empty line (a line break in it would inject mail headers); a body
// must not render empty. An SMS may take at most MaxSMSSegments segments:
// see Segments for how they are counted. Slovak, Czech and Polish letters
// (č, ť, ř, ą, ł, ...) switch a whole SMS to UCS-2, 70 characters per
// segment instead of 160, so keep SMS templates short.
//
// # Fields
//
// Templates see a Data value:
//
//	.Customer.ID .Customer.Name .Customer.FirstName .Customer.Email
//	.Customer.Phone .Customer.Language
//	.Campaign                     the campaign's name ("" for a reply)
//	.UnsubscribeURL               e-mail only: the one-click unsubscribe link
//	.Shop.Name .Shop.URL .Shop.SupportEmail .Shop.SupportPhone
//	.Extra.<key>                  custom fields, e.g. audience CSV columns
//
// FirstName is the first word of Name, skipping titles such as "Ing." or
// "Mgr.", unless the caller sets it; Shop comes
// from the daemon's configuration. A field that may be empty reads best
// inside {{with}}: "Dobrý deň{{with .Customer.FirstName}}, {{.}}{{end}},"
// greets a customer without a name with "Dobrý deň,". Templates execute
// with missingkey=error: {{.Extra.coupon}} fails for a recipient without a
// "coupon" field ("missing field Extra.coupon"), while
// {{index .Extra "coupon"}} gives "" instead.
//
// # Shipped templates
//
// Each in sk, cs, pl and en:
//
//	welcome  email       welcome to the newsletter, unsubscribe link in the footer
//	promo    email, sms  a seasonal sale ("spring-sale"); the SMS ends with the opt-out (STOP)
//	help     sms         the reply to HELP and INFO: who writes, STOP, START, contacts
//	test     email, sms  minimal, for test sends
//
// Czech addresses people in the vocative ("Dobrý den, pane Nováku"), which a
// customer record does not hold: the Czech e-mails greet with the audience
// column "osloveni" when a recipient has one, and neutrally otherwise.
//
// # Validation
//
// Load reads and checks every file before any is used, and reports every
// problem at once, each as "templates: <file>:<line>: ...": syntax errors,
// references to fields that do not exist (in every branch, not only the one
// taken), a missing block, text outside the blocks, a subject that is not
// one line, an empty body, an SMS over MaxSMSSegments, an unknown language
// code, a file in an unexpected place. Each template is executed with a
// sample customer, once with a name and once without (and no campaign), so
// a greeting must read well for both; the sample's Extra holds every name
// the file uses as a field. A Set is safe for concurrent use. To reload,
// Load again and hand the new Set to the old one's Replace: renders that
// start afterwards use the new files, none sees a mix; a failed Load
// leaves the old Set as it was. backofficed does this on SIGHUP.
//
// # Languages
//
// Resolve picks the file for a customer's language: the language itself
// ("sk-SK" and "SK" count as "sk"), else Options.FallbackLanguage, else an
// error wrapping ErrNotFound.
package templates
