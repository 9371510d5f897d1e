package templates

import (
	"cmp"
	"errors"
	"fmt"
	htemplate "html/template"
	ttemplate "text/template"
	"text/template/parse"
)

// add parses the file src for k, renders it with the sample customers and,
// when all is well, adds it to c.
func (s *Set) add(c *catalog, k key, src source) []error {
	switch k.channel {
	case ChannelEmail:
		t, errs := parseEmail(src.path, src.text)
		if errs != nil {
			return errs
		}
		for _, smp := range s.samples(k.lang, t.subject) {
			if _, err := s.renderEmail(t, &smp.data); err != nil {
				return []error{sampleError(src.path, smp.who, err)}
			}
		}
		c.email[k] = t
	case ChannelSMS:
		t, errs := parseSMS(src.path, src.text)
		if errs != nil {
			return errs
		}
		for _, smp := range s.samples(k.lang, t.body) {
			if _, err := s.renderSMS(t, &smp.data); err != nil {
				return []error{sampleError(src.path, smp.who, err)}
			}
		}
		c.sms[k] = t
	}
	return nil
}

// sample is a recipient Load renders every template for.
type sample struct {
	who  string
	data Data
}

// samples returns the recipients a file in lang is tried with: a customer
// with every field set, and one without a name. Extra holds every name
// the file's templates use as a field, so no .Extra.<key> is missing;
// Shop is the configured one with any empty field filled in.
func (s *Set) samples(lang string, t *ttemplate.Template) []sample {
	full := Data{
		Customer: CustomerData{
			ID: "sample-customer", Name: "Alexandra Nováková", FirstName: "Alexandra",
			Email: "alexandra.novakova@example.com", Phone: "+421901234567", Language: lang,
		},
		Campaign:       "sample-campaign",
		UnsubscribeURL: "https://shop.example/unsubscribe/sample-token",
		Shop: ShopData{
			Name:         cmp.Or(s.shop.Name, "Sample Shop"),
			URL:          cmp.Or(s.shop.URL, "https://shop.example"),
			SupportEmail: cmp.Or(s.shop.SupportEmail, "support@shop.example"),
			SupportPhone: cmp.Or(s.shop.SupportPhone, "+421 2 1234 5678"),
		},
		Extra: make(map[string]string),
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			fieldNamesIn(tt.Tree.Root, func(name string) { full.Extra[name] = "sample " + name })
		}
	}
	nameless := full
	nameless.Customer.Name, nameless.Customer.FirstName = "", ""
	nameless.Campaign = ""
	return []sample{
		{"the sample customer", full},
		{"a customer without a name and no campaign", nameless},
	}
}

// sampleError turns a failure to render a sample into a load error naming
// file and line where the template engine knows them.
func sampleError(path, who string, err error) error {
	var pe *partError
	if !errors.As(err, &pe) {
		return fmt.Errorf("templates: %s: rendering for %s: %w", path, who, err)
	}
	var he *htemplate.Error
	if errors.As(pe.err, &he) && he.Node == nil && he.Line == 0 {
		// An escaping error such as an unclosed attribute at the end of
		// the block: html/template knows the block but not the file.
		return fmt.Errorf("templates: %s: %s block: %s (rendering for %s)", path, he.Name, he.Description, who)
	}
	if pe.exec {
		return fmt.Errorf("%w (rendering for %s)", templateError(pe.err), who)
	}
	return fmt.Errorf("templates: %s: %s %v (rendering for %s)", path, pe.part, pe.err, who)
}

// fieldNamesIn calls add with every name used as a field anywhere under n.
func fieldNamesIn(n parse.Node, add func(string)) {
	each := func(names []string) {
		for _, name := range names {
			add(name)
		}
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n != nil {
			for _, c := range n.Nodes {
				fieldNamesIn(c, add)
			}
		}
	case *parse.ActionNode:
		fieldNamesIn(n.Pipe, add)
	case *parse.IfNode:
		fieldNamesInBranch(&n.BranchNode, add)
	case *parse.WithNode:
		fieldNamesInBranch(&n.BranchNode, add)
	case *parse.RangeNode:
		fieldNamesInBranch(&n.BranchNode, add)
	case *parse.TemplateNode:
		fieldNamesIn(n.Pipe, add)
	case *parse.PipeNode:
		if n != nil {
			for _, c := range n.Cmds {
				fieldNamesIn(c, add)
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			fieldNamesIn(a, add)
		}
	case *parse.FieldNode:
		each(n.Ident)
	case *parse.VariableNode:
		each(n.Ident[1:])
	case *parse.ChainNode:
		fieldNamesIn(n.Node, add)
		each(n.Field)
	}
}

func fieldNamesInBranch(b *parse.BranchNode, add func(string)) {
	fieldNamesIn(b.Pipe, add)
	fieldNamesIn(b.List, add)
	fieldNamesIn(b.ElseList, add)
}
