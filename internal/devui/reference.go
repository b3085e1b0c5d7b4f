package devui

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// reference is the API reference page's model, built once from the
// embedded OpenAPI document.
type reference struct {
	Title, Version, Summary string
	Description             string
	Tags                    []tagGroup
}

type tagGroup struct {
	Name, Description string
	Ops               []operation
}

type operation struct {
	ID, Method, Path, Alias string // Alias: the same operation under /api
	Summary, Description    string
	Params                  []param
	Body                    *schemaView
	Responses               []response
	Auth                    bool
}

type param struct {
	Name, In, Description string
	Required              bool
}

type schemaView struct {
	Name   string
	Fields []field
}

type field struct {
	Name, Type, Description string
	Required                bool
}

type response struct {
	Code, Description string
	Cases             []envelopeCase
}

// envelopeCase is one (status, message) pair a response documents.
type envelopeCase struct{ Status, Message string }

func newReference(spec []byte) (*reference, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("devui: load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("devui: openapi.yaml is not valid: %w", err)
	}
	ref := &reference{Title: doc.Info.Title, Version: doc.Info.Version, Summary: doc.Info.Summary,
		Description: doc.Info.Description}
	groups := map[string]*tagGroup{}
	var order []string
	for _, t := range doc.Tags {
		groups[t.Name] = &tagGroup{Name: t.Name, Description: t.Description}
		order = append(order, t.Name)
	}
	paths := doc.Paths.Map()
	for _, p := range documentOrder(spec, paths) {
		if _, twin := paths[strings.TrimPrefix(p, "/api")]; twin && strings.HasPrefix(p, "/api/") {
			continue // listed as its bare twin's alias
		}
		for method, op := range paths[p].Operations() {
			o := newOperation(doc, p, method, op)
			if _, ok := paths["/api"+p]; ok {
				o.Alias = "/api" + p
			}
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			g, ok := groups[tag]
			if !ok {
				g = &tagGroup{Name: tag}
				groups[tag] = g
				order = append(order, tag)
			}
			g.Ops = append(g.Ops, o)
		}
	}
	for _, name := range order {
		if g := groups[name]; len(g.Ops) > 0 {
			ref.Tags = append(ref.Tags, *g)
		}
	}
	return ref, nil
}

// documentOrder lists the paths as the YAML file lists them, which is the
// order a reader follows (the parsed document keeps them in a map).
func documentOrder(spec []byte, paths map[string]*openapi3.PathItem) []string {
	out := make([]string, 0, len(paths))
	pos := map[string]int{}
	for p := range paths {
		i := bytes.Index(spec, []byte("\n  "+p+":"))
		if i < 0 {
			i = len(spec)
		}
		pos[p] = i
		out = append(out, p)
	}
	sort.Slice(out, func(a, b int) bool {
		if pos[out[a]] != pos[out[b]] {
			return pos[out[a]] < pos[out[b]]
		}
		return out[a] < out[b]
	})
	return out
}

func newOperation(doc *openapi3.T, path, method string, op *openapi3.Operation) operation {
	o := operation{ID: op.OperationID, Method: method, Path: path, Summary: op.Summary, Description: op.Description,
		Auth: op.Security == nil && len(doc.Security) > 0 || op.Security != nil && len(*op.Security) > 0}
	for _, pr := range op.Parameters {
		if p := pr.Value; p != nil {
			o.Params = append(o.Params, param{Name: p.Name, In: p.In, Description: p.Description, Required: p.Required})
		}
	}
	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		if mt := rb.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
			o.Body = newSchemaView(mt.Schema)
		}
	}
	if op.Responses != nil {
		for code, rr := range op.Responses.Map() {
			if rr.Value == nil {
				continue
			}
			r := response{Code: code}
			if rr.Value.Description != nil {
				r.Description = *rr.Value.Description
			}
			if mt := rr.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
				r.Cases = cases(mt.Schema, map[*openapi3.Schema]bool{})
			}
			o.Responses = append(o.Responses, r)
		}
		sort.Slice(o.Responses, func(a, b int) bool { return o.Responses[a].Code < o.Responses[b].Code })
	}
	return o
}

func newSchemaView(ref *openapi3.SchemaRef) *schemaView {
	s := ref.Value
	v := &schemaView{Name: strings.TrimPrefix(ref.Ref, "#/components/schemas/")}
	if s == nil {
		return v
	}
	req := map[string]bool{}
	for _, r := range s.Required {
		req[r] = true
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Slice(names, func(a, b int) bool {
		if req[names[a]] != req[names[b]] {
			return req[names[a]]
		}
		return names[a] < names[b]
	})
	for _, n := range names {
		p := s.Properties[n]
		f := field{Name: n, Required: req[n]}
		if p.Value != nil {
			f.Description = p.Value.Description
			if p.Value.Type != nil {
				f.Type = strings.Join(p.Value.Type.Slice(), " | ")
			}
		}
		v.Fields = append(v.Fields, f)
	}
	return v
}

// cases collects the (status, message) constants a response schema allows,
// walking allOf/oneOf/anyOf: the document spells each error case that way.
func cases(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) []envelopeCase {
	s := ref.Value
	if s == nil || seen[s] {
		return nil
	}
	seen[s] = true
	var out []envelopeCase
	if st := s.Properties["status"]; st != nil && st.Value != nil {
		if c, ok := st.Value.Const.(string); ok {
			e := envelopeCase{Status: c}
			if m := s.Properties["message"]; m != nil && m.Value != nil {
				switch {
				case m.Value.Const != nil:
					e.Message = fmt.Sprint(m.Value.Const)
				case m.Value.Pattern != "":
					e.Message = "(a message matching " + m.Value.Pattern + ")"
				}
			}
			out = append(out, e)
		}
	}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.OneOf, s.AnyOf} {
		for _, sub := range group {
			out = append(out, cases(sub, seen)...)
		}
	}
	return out
}

var (
	mdCode   = regexp.MustCompile("`([^`]+)`")
	mdBold   = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	mdItalic = regexp.MustCompile(`(^|[\s(])\*([^*\s][^*]*)\*`)
)

// markdown renders the little Markdown the document's descriptions use:
// paragraphs, "## " headings, "- " lists, `code`, **bold** and *italic*.
// Everything is escaped first, so the document cannot inject markup.
func markdown(src string) template.HTML {
	var b strings.Builder
	inList := false
	closeList := func() {
		if inList {
			b.WriteString("</ul>\n")
			inList = false
		}
	}
	for _, para := range strings.Split(strings.TrimSpace(src), "\n\n") {
		lines := strings.Split(para, "\n")
		var text []string
		flush := func() {
			if len(text) > 0 {
				b.WriteString("<p>" + inline(strings.Join(text, " ")) + "</p>\n")
				text = nil
			}
		}
		for _, ln := range lines {
			t := strings.TrimSpace(ln)
			switch {
			case strings.HasPrefix(t, "## "):
				flush()
				closeList()
				b.WriteString("<h3>" + inline(t[3:]) + "</h3>\n")
			case strings.HasPrefix(t, "- "):
				flush()
				if !inList {
					b.WriteString("<ul>\n")
					inList = true
				}
				b.WriteString("<li>" + inline(t[2:]))
			case inList && strings.HasPrefix(ln, "  ") && t != "":
				b.WriteString(" " + inline(t))
			default:
				closeList()
				text = append(text, t)
			}
		}
		flush()
		closeList()
	}
	return template.HTML(b.String())
}

func inline(s string) string {
	s = template.HTMLEscapeString(s)
	s = mdCode.ReplaceAllString(s, "<code>$1</code>")
	s = mdBold.ReplaceAllString(s, "<strong>$1</strong>")
	return mdItalic.ReplaceAllString(s, "$1<em>$2</em>")
}

// Anchor makes an operation's fragment id for links.
func (o operation) Anchor() string { return "op-" + strings.ToLower(o.Method) + "-" + slug(o.Path) }

func slug(p string) string {
	var b strings.Builder
	for _, r := range strings.Trim(p, "/") {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// CodeClass groups a status code for colouring.
func (r response) CodeClass() string {
	n, _ := strconv.Atoi(r.Code)
	return "c" + strconv.Itoa(n/100) + "xx"
}
