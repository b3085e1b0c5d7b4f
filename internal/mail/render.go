package mail

import (
	"embed"
	"errors"
	"fmt"
	htemplate "html/template"
	"io/fs"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	ttemplate "text/template"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

// Message is one rendered code mail. ID and At are set only by Mailbox.
type Message struct {
	ID      string    `json:"id,omitempty"`
	At      time.Time `json:"at,omitzero"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Text    string    `json:"text"`
	HTML    string    `json:"html"`
}

// Input errors, wrapped by Render and SendCode. They never carry the values.
var (
	ErrInvalidAddress = errors.New("invalid recipient address")
	ErrInvalidCode    = errors.New("code must be exactly 6 decimal digits")
)

// codeTTL is what the mail promises; the OTP rules (docs/api.md §4) fix it.
const codeTTL = "10 minutes"

const (
	textTemplateName = "code.txt"
	htmlTemplateName = "code.html"
)

//go:embed templates/code.txt templates/code.html
var embedded embed.FS

// The embedded templates are parsed once per process.
var (
	defaultText = ttemplate.Must(ttemplate.New(textTemplateName).Parse(mustRead(embedded, "templates/"+textTemplateName)))
	defaultHTML = htemplate.Must(htemplate.New(htmlTemplateName).Parse(mustRead(embedded, "templates/"+htmlTemplateName)))
)

func mustRead(fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// templateData is what templates see. The recipient is deliberately absent:
// an address may contain digits that would make the code ambiguous.
type templateData struct {
	Product   string
	Code      string
	ExpiresIn string
	// Wallet is set for a link code: the wallet the code would link to the
	// address, in groups of four characters (see groupWallet).
	Wallet string
}

// renderer holds parsed templates so that per-message work is only execution.
type renderer struct {
	subject string
	product string
	text    *ttemplate.Template
	html    *htemplate.Template
}

// newRenderer expects cfg with defaults applied.
func newRenderer(cfg Config) (*renderer, error) {
	r, err := loadRenderer(cfg)
	if err != nil {
		return nil, err
	}
	// A sample render catches templates (or a product name) that would put
	// another 6-digit number next to the code, before the first real mail.
	for _, sample := range []kyc.CodeMail{
		{To: "sample@example.com", Code: "482913"},
		{To: "sample@example.com", Code: "482913", Wallet: "0x8ba1f109551bD432803012645Ac136ddd64DBA72"},
	} {
		if _, err := r.render(sample); err != nil {
			return nil, fmt.Errorf("mail templates: %w", err)
		}
	}
	return r, nil
}

func loadRenderer(cfg Config) (*renderer, error) {
	r := &renderer{subject: cfg.Subject, product: cfg.Product, text: defaultText, html: defaultHTML}
	if cfg.TemplateDir != "" {
		if err := r.loadDir(cfg.TemplateDir); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *renderer) loadDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("mail templates: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mail templates: %s is not a directory", dir)
	}
	found := 0
	if b, err := os.ReadFile(filepath.Join(dir, textTemplateName)); err == nil {
		t, err := ttemplate.New(textTemplateName).Option("missingkey=error").Parse(string(b))
		if err != nil {
			return fmt.Errorf("mail templates: %w", err)
		}
		r.text, found = t, found+1
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mail templates: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, htmlTemplateName)); err == nil {
		t, err := htemplate.New(htmlTemplateName).Option("missingkey=error").Parse(string(b))
		if err != nil {
			return fmt.Errorf("mail templates: %w", err)
		}
		r.html, found = t, found+1
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mail templates: %w", err)
	}
	if found == 0 {
		return fmt.Errorf("mail templates: %s holds neither %s nor %s", dir, textTemplateName, htmlTemplateName)
	}
	return nil
}

// Render produces the mail for one code with cfg's subject, product and
// templates. It parses cfg.TemplateDir on every call; long-lived senders
// (SMTP, Mailbox) parse once at construction instead.
func Render(cfg Config, m kyc.CodeMail) (Message, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Message{}, err
	}
	r, err := loadRenderer(cfg)
	if err != nil {
		return Message{}, err
	}
	return r.render(m)
}

func (r *renderer) render(cm kyc.CodeMail) (Message, error) {
	code := cm.Code
	addr, err := normalizeAddress(cm.To)
	if err != nil {
		return Message{}, err
	}
	if !isCode(code) {
		return Message{}, ErrInvalidCode
	}
	data := templateData{Product: r.product, Code: code, ExpiresIn: codeTTL, Wallet: groupWallet(cm.Wallet)}
	// Builders hand their bytes to String without a copy; the sizes fit the
	// embedded templates' output.
	var text, html strings.Builder
	text.Grow(512)
	html.Grow(3072)
	if err := r.text.Execute(&text, data); err != nil {
		return Message{}, fmt.Errorf("render text part: %w", err)
	}
	if err := r.html.Execute(&html, data); err != nil {
		return Message{}, fmt.Errorf("render html part: %w", err)
	}
	m := Message{To: addr, Subject: r.subject, Text: text.String(), HTML: html.String()}
	if err := checkText(m.Text, code); err != nil {
		return Message{}, err
	}
	if !strings.Contains(m.HTML, code) {
		return Message{}, errors.New("html part does not show the code")
	}
	return m, nil
}

// normalizeAddress accepts a bare addr-spec only and returns it trimmed but
// otherwise as given: net/mail would drop the quotes of a quoted local part,
// which changes the address. Errors never include the address.
func normalizeAddress(to string) (string, error) {
	to = strings.TrimSpace(to)
	if strings.ContainsAny(to, "\r\n") || strings.HasPrefix(to, "<") || strings.HasSuffix(to, ">") {
		return "", ErrInvalidAddress
	}
	a, err := mail.ParseAddress(to)
	if err != nil || a.Name != "" || strings.LastIndexByte(a.Address, '@') < 1 {
		return "", ErrInvalidAddress
	}
	return to, nil
}

// groupWallet writes a wallet address in groups of four characters (an EVM
// address's 0x apart), as banks write IBANs: the whole address stays
// checkable by eye, and no run of six digits in it can be taken for the
// code (checkText refuses any).
func groupWallet(w string) string {
	var b strings.Builder
	if rest, ok := strings.CutPrefix(w, "0x"); ok {
		b.WriteString("0x")
		w = rest
	}
	for i := 0; i < len(w); i += 4 {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w[i:min(i+4, len(w))])
	}
	return b.String()
}

func isCode(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkText enforces that the text part shows the code exactly once and no
// other run of six or more digits, so that people and mail clients that
// auto-detect codes cannot pick the wrong number.
func checkText(text, code string) error {
	seen := 0
	for i := 0; i < len(text); {
		if text[i] < '0' || text[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		if j-i >= 6 {
			if text[i:j] != code {
				return errors.New("text part contains a number of six or more digits other than the code")
			}
			seen++
		}
		i = j
	}
	if seen != 1 {
		return fmt.Errorf("text part must show the code exactly once, shows it %d times", seen)
	}
	return nil
}
