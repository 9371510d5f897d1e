package templates

import (
	"fmt"
	htemplate "html/template"
	"strings"
	ttemplate "text/template"
	"text/template/parse"
	"unicode"
)

// emailTemplate is one parsed <lang>.email.tmpl file.
type emailTemplate struct {
	path    string
	subject *ttemplate.Template
	text    *ttemplate.Template
	html    *htemplate.Template
}

// smsTemplate is one parsed <lang>.sms.tmpl file.
type smsTemplate struct {
	path string
	body *ttemplate.Template
}

// emailBlocks returns the blocks every e-mail file defines, in render
// order.
func emailBlocks() [3]string { return [3]string{"subject", "text", "html"} }

// parseEmail parses an e-mail file: subject and text with text/template,
// html with html/template. The file's name in errors is path.
func parseEmail(path, src string) (*emailTemplate, []error) {
	t, err := newText(path).Parse(src)
	if err != nil {
		return nil, []error{templateError(err)}
	}
	var errs []error
	if at := firstContent(t.Tree); at >= 0 {
		errs = append(errs, fmt.Errorf(`templates: %s:%d: text outside the {{define}} blocks (an e-mail file is {{define "subject"}}, {{define "text"}} and {{define "html"}}; use {{/* */}} for comments)`,
			path, 1+strings.Count(src[:at], "\n")))
	}
	for _, block := range emailBlocks() {
		if t.Lookup(block) == nil {
			errs = append(errs, fmt.Errorf("templates: %s: missing {{define %q}} block", path, block))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	h, err := htemplate.New(path).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, []error{templateError(err)}
	}
	for _, block := range emailBlocks() {
		errs = append(errs, checkFields(t.Lookup(block).Tree)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &emailTemplate{path: path, subject: t.Lookup("subject"), text: t.Lookup("text"), html: h.Lookup("html")}, nil
}

// parseSMS parses an SMS file, whose whole text is the body.
func parseSMS(path, src string) (*smsTemplate, []error) {
	t, err := newText(path).Parse(src)
	if err != nil {
		return nil, []error{templateError(err)}
	}
	if errs := checkFields(t.Tree); len(errs) > 0 {
		return nil, errs
	}
	return &smsTemplate{path: path, body: t}, nil
}

func newText(path string) *ttemplate.Template {
	return ttemplate.New(path).Option("missingkey=error")
}

// firstContent returns the byte offset in the source of the first thing
// in tree's top level other than white space, or -1.
func firstContent(tree *parse.Tree) int {
	if tree == nil || tree.Root == nil {
		return -1
	}
	for _, n := range tree.Root.Nodes {
		t, ok := n.(*parse.TextNode)
		if !ok {
			return int(n.Position())
		}
		if i := strings.IndexFunc(string(t.Text), func(r rune) bool { return !unicode.IsSpace(r) }); i >= 0 {
			return int(t.Position()) + i
		}
	}
	return -1
}

// nodeError reports msg at node n of tree as "templates: file:line:col: msg".
func nodeError(tree *parse.Tree, n parse.Node, msg string) error {
	loc, _ := tree.ErrorContext(n)
	return fmt.Errorf("templates: %s: %s", loc, msg)
}

// templateError turns a text/template or html/template error, which
// already names file:line, into a load error.
func templateError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	msg = strings.TrimPrefix(msg, "html/template:")
	return fmt.Errorf("templates: %s", msg)
}
