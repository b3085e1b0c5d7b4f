package devui

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"regexp"
	"sort"
	"strconv"
	"strings"

	yaml "github.com/oasdiff/yaml3"
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

// node is a decoded YAML mapping; the document is read generically rather
// than through an OpenAPI library, which would add megabytes to the binary
// for one development page (the contract tests validate the document).
type node = map[string]any

func newReference(spec []byte) (*reference, error) {
	var raw any
	if err := yaml.Unmarshal(spec, &raw); err != nil {
		return nil, fmt.Errorf("devui: parse openapi.yaml: %w", err)
	}
	doc, ok := stringKeys(raw).(node)
	if !ok {
		return nil, errors.New("devui: openapi.yaml is not a mapping")
	}
	d := &document{root: doc}
	info := d.get(doc, "info")
	ref := &reference{Title: str(info, "title"), Version: str(info, "version"), Summary: str(info, "summary"),
		Description: str(info, "description")}
	groups := map[string]*tagGroup{}
	var order []string
	for _, t := range list(doc, "tags") {
		tn, _ := t.(node)
		groups[str(tn, "name")] = &tagGroup{Name: str(tn, "name"), Description: str(tn, "description")}
		order = append(order, str(tn, "name"))
	}
	paths := d.get(doc, "paths")
	if len(paths) == 0 {
		return nil, errors.New("devui: openapi.yaml lists no paths")
	}
	for _, p := range documentOrder(spec, paths) {
		if _, twin := paths[strings.TrimPrefix(p, "/api")]; twin && strings.HasPrefix(p, "/api/") {
			continue // listed as its bare twin's alias
		}
		item := d.get(paths, p)
		for _, method := range []string{"get", "put", "post", "patch", "delete", "head", "options"} {
			op := d.get(item, method)
			if op == nil {
				continue
			}
			o := d.operation(p, strings.ToUpper(method), op)
			if _, ok := paths["/api"+p]; ok {
				o.Alias = "/api" + p
			}
			tag := "other"
			if tags := list(op, "tags"); len(tags) > 0 {
				tag = fmt.Sprint(tags[0])
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

// stringKeys turns every mapping into a node: YAML decodes one with a
// non-string key (an unquoted 200: under responses) as map[any]any.
func stringKeys(v any) any {
	switch t := v.(type) {
	case map[any]any:
		n := make(node, len(t))
		for k, x := range t {
			n[fmt.Sprint(k)] = stringKeys(x)
		}
		return n
	case node:
		for k, x := range t {
			t[k] = stringKeys(x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = stringKeys(x)
		}
		return t
	}
	return v
}

// document resolves local $refs ("#/components/schemas/X") in the tree.
type document struct{ root node }

// get returns n[key] as a mapping, following a $ref.
func (d *document) get(n node, key string) node {
	v, _ := n[key].(node)
	return d.deref(v)
}

func (d *document) deref(n node) node {
	for range 16 { // a chain of refs, bounded against cycles
		r, ok := n["$ref"].(string)
		if !ok {
			return n
		}
		n = d.lookup(r)
	}
	return nil
}

func (d *document) lookup(ref string) node {
	cur := d.root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		next, ok := cur[part].(node)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func str(n node, key string) string {
	s, _ := n[key].(string)
	return s
}

func list(n node, key string) []any {
	l, _ := n[key].([]any)
	return l
}

// documentOrder lists the paths as the YAML file lists them, which is the
// order a reader follows (a decoded mapping has none).
func documentOrder(spec []byte, paths node) []string {
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

func (d *document) operation(path, method string, op node) operation {
	o := operation{ID: str(op, "operationId"), Method: method, Path: path, Summary: str(op, "summary"),
		Description: str(op, "description"), Auth: len(list(d.root, "security")) > 0}
	if sec, ok := op["security"]; ok {
		l, _ := sec.([]any)
		o.Auth = len(l) > 0
	}
	for _, raw := range list(op, "parameters") {
		pn, _ := raw.(node)
		if pn = d.deref(pn); pn != nil {
			req, _ := pn["required"].(bool)
			o.Params = append(o.Params, param{Name: str(pn, "name"), In: str(pn, "in"), Description: str(pn, "description"), Required: req})
		}
	}
	if schema, ref := d.jsonSchema(d.get(op, "requestBody")); schema != nil {
		o.Body = d.schemaView(schema, ref)
	}
	responses := d.get(op, "responses")
	for code := range responses {
		rn := d.get(responses, code)
		r := response{Code: code, Description: str(rn, "description")}
		if schema, _ := d.jsonSchema(rn); schema != nil {
			r.Cases = d.cases(schema, 0)
		}
		o.Responses = append(o.Responses, r)
	}
	sort.Slice(o.Responses, func(a, b int) bool { return o.Responses[a].Code < o.Responses[b].Code })
	return o
}

// jsonSchema returns the application/json schema of a request body or
// response, resolved, and the name of the component it refers to.
func (d *document) jsonSchema(n node) (node, string) {
	content := d.get(n, "content")
	mt := d.get(content, "application/json")
	raw, _ := mt["schema"].(node)
	if raw == nil {
		return nil, ""
	}
	ref, _ := raw["$ref"].(string)
	return d.deref(raw), strings.TrimPrefix(ref, "#/components/schemas/")
}

func (d *document) schemaView(s node, name string) *schemaView {
	v := &schemaView{Name: name}
	req := map[string]bool{}
	for _, r := range list(s, "required") {
		req[fmt.Sprint(r)] = true
	}
	props := d.get(s, "properties")
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Slice(names, func(a, b int) bool {
		if req[names[a]] != req[names[b]] {
			return req[names[a]]
		}
		return names[a] < names[b]
	})
	for _, n := range names {
		p := d.get(props, n)
		f := field{Name: n, Required: req[n], Description: str(p, "description")}
		switch t := p["type"].(type) {
		case string:
			f.Type = t
		case []any:
			parts := make([]string, len(t))
			for i, x := range t {
				parts[i] = fmt.Sprint(x)
			}
			f.Type = strings.Join(parts, " | ")
		}
		v.Fields = append(v.Fields, f)
	}
	return v
}

// cases collects the (status, message) constants a response schema allows,
// walking allOf/oneOf/anyOf: the document spells each error case that way.
func (d *document) cases(s node, depth int) []envelopeCase {
	if s == nil || depth > 16 {
		return nil
	}
	var out []envelopeCase
	props := d.get(s, "properties")
	if c, ok := d.get(props, "status")["const"].(string); ok {
		e := envelopeCase{Status: c}
		m := d.get(props, "message")
		switch {
		case m["const"] != nil:
			e.Message = fmt.Sprint(m["const"])
		case str(m, "pattern") != "":
			e.Message = "(a message matching " + str(m, "pattern") + ")"
		}
		out = append(out, e)
	}
	for _, key := range []string{"allOf", "oneOf", "anyOf"} {
		for _, sub := range list(s, key) {
			sn, _ := sub.(node)
			out = append(out, d.cases(d.deref(sn), depth+1)...)
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
