package templates

import (
	"fmt"
	"reflect"
	"strings"
	"text/template/parse"
)

// checkFields reports every field reference in tree, a block executed with
// a Data as dot, that names a field Data does not have — in every branch,
// not only those a sample execution takes. References it cannot type
// (variables other than $, the elements of range, blocks called with
// {{template}}) are left to the sample executions in Load.
func checkFields(tree *parse.Tree) []error {
	if tree == nil {
		return nil
	}
	c := fieldChecker{tree: tree, root: reflect.TypeFor[Data]()}
	c.list(tree.Root, c.root)
	return c.errs
}

// fieldChecker walks one parse tree, tracking the type of dot; a nil type
// means unknown.
type fieldChecker struct {
	tree *parse.Tree
	root reflect.Type
	errs []error
}

func (c *fieldChecker) list(l *parse.ListNode, dot reflect.Type) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		c.node(n, dot)
	}
}

func (c *fieldChecker) node(n parse.Node, dot reflect.Type) {
	switch n := n.(type) {
	case *parse.ActionNode:
		c.pipe(n.Pipe, dot)
	case *parse.IfNode:
		c.branch(&n.BranchNode, dot, dot)
	case *parse.WithNode:
		c.branch(&n.BranchNode, dot, c.pipeType(n.Pipe, dot))
	case *parse.RangeNode:
		c.branch(&n.BranchNode, dot, elemType(c.pipeType(n.Pipe, dot)))
	case *parse.TemplateNode:
		c.pipe(n.Pipe, dot)
	}
}

// branch checks an if, with or range: its pipeline and else part with dot,
// its body with inner.
func (c *fieldChecker) branch(b *parse.BranchNode, dot, inner reflect.Type) {
	c.pipe(b.Pipe, dot)
	c.list(b.List, inner)
	c.list(b.ElseList, dot)
}

func (c *fieldChecker) pipe(p *parse.PipeNode, dot reflect.Type) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			c.arg(arg, dot)
		}
	}
}

func (c *fieldChecker) arg(n parse.Node, dot reflect.Type) {
	switch n := n.(type) {
	case *parse.FieldNode:
		c.chain(n, dot, n.Ident)
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			c.chain(n, c.root, n.Ident[1:])
		}
	case *parse.ChainNode:
		c.arg(n.Node, dot)
	case *parse.PipeNode:
		c.pipe(n, dot)
	}
}

// chain reports the first of the field names idents, followed from typ,
// that does not exist.
func (c *fieldChecker) chain(n parse.Node, typ reflect.Type, idents []string) {
	_, bad, from := follow(typ, idents)
	switch {
	case bad < 0:
	case from.Kind() == reflect.Struct:
		c.errs = append(c.errs, nodeError(c.tree, n, fmt.Sprintf(
			"unknown field %s in <%s> (%s has %s)", idents[bad], n, from.Name(), fieldNames(from))))
	default:
		c.errs = append(c.errs, nodeError(c.tree, n, fmt.Sprintf(
			"field %s in <%s> is taken from a %s, which has no fields", idents[bad], n, from.Kind())))
	}
}

// follow follows the field names idents from typ. It returns the type
// reached (nil when unknown), and, when a name does not exist, its index
// and the type it was looked up in; else bad is -1.
func follow(typ reflect.Type, idents []string) (reached reflect.Type, bad int, from reflect.Type) {
	for i, id := range idents {
		if typ == nil {
			return nil, -1, nil
		}
		switch typ.Kind() {
		case reflect.Struct:
			f, ok := typ.FieldByName(id)
			if !ok || !f.IsExported() {
				return nil, i, typ
			}
			typ = f.Type
		case reflect.Map:
			typ = typ.Elem() // any key: a missing one is the recipient's data, checked at render
		default:
			return nil, i, typ
		}
	}
	return typ, -1, nil
}

// pipeType returns the type of a pipeline that is a single field
// reference, or nil.
func (c *fieldChecker) pipeType(p *parse.PipeNode, dot reflect.Type) reflect.Type {
	if p == nil || len(p.Cmds) != 1 || len(p.Decl) > 0 || len(p.Cmds[0].Args) != 1 {
		return nil
	}
	var typ reflect.Type
	switch n := p.Cmds[0].Args[0].(type) {
	case *parse.DotNode:
		return dot
	case *parse.FieldNode:
		typ, _, _ = follow(dot, n.Ident)
	case *parse.VariableNode:
		if n.Ident[0] == "$" {
			typ, _, _ = follow(c.root, n.Ident[1:])
		}
	}
	return typ
}

// elemType returns the type dot takes inside a range over typ, or nil.
func elemType(typ reflect.Type) reflect.Type {
	if typ == nil {
		return nil
	}
	switch typ.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array:
		return typ.Elem()
	}
	return nil
}

func fieldNames(typ reflect.Type) string {
	var names []string
	for i := range typ.NumField() {
		if f := typ.Field(i); f.IsExported() {
			names = append(names, f.Name)
		}
	}
	return strings.Join(names, ", ")
}
