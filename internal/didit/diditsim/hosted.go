package diditsim

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

//go:embed templates/session.html
var templateFS embed.FS

var sessionPage = template.Must(template.ParseFS(templateFS, "templates/session.html"))

// mainPresets are the plain outcomes shown first on the hosted page.
var mainPresets = []string{PresetApproved, PresetDeclinedID, PresetDeclinedLiveness, PresetDeclinedFaceMatch, PresetInReviewAML}

type pageView struct {
	Missing     bool
	Lang        string
	Title       string
	Message     string
	Environment string
	SessionID   string
	Number      int
	Status      string
	StatusClass string
	VendorData  string
	Callback    string
	Outcome     string
	Armed       string
	Open        bool
	Action      string
	IP          IPFields
	Main, Extra []PresetInfo
}

// openForUser: the person can still finish the flow.
func openForUser(status string) bool {
	return status == StatusNotStarted || status == StatusInProgress || status == StatusResubmitted
}

func (s *Sim) pageViewLocked(sess *session, lang string) pageView {
	v := pageView{
		Lang:        "en",
		Title:       "Identity verification",
		Environment: sess.env,
		SessionID:   sess.id,
		Number:      sess.number,
		Status:      sess.status,
		StatusClass: statusClass(sess.status),
		Armed:       sess.armed,
		Open:        openForUser(sess.status),
		Action:      s.pageURLLocked(sess, lang),
	}
	if lang != "" {
		v.Lang = lang
	}
	if sess.vendorData != nil {
		v.VendorData = *sess.vendorData
	}
	if sess.callback != nil {
		v.Callback = *sess.callback
	}
	if sess.result != nil {
		v.Outcome = sess.result.preset
	}
	for _, p := range presetList {
		if slices.Contains(mainPresets, p.Name) {
			v.Main = append(v.Main, p)
		} else {
			v.Extra = append(v.Extra, p)
		}
	}
	return v
}

func (s *Sim) pageURLLocked(sess *session, lang string) string {
	if lang != "" {
		return s.baseURL + "/" + lang + "/session/" + sess.token
	}
	return s.baseURL + "/session/" + sess.token
}

func statusClass(status string) string {
	switch status {
	case StatusApproved, StatusDeclined, StatusExpired, StatusAbandoned, StatusKycExpired, StatusInReview, StatusResubmitted:
		return "s-" + strings.ReplaceAll(strings.ToLower(status), " ", "-")
	}
	return "s-other"
}

// validLang accepts language prefixes such as "en", "pt-BR", "zh-CN".
func validLang(lang string) bool {
	if lang == "" {
		return true
	}
	if len(lang) < 2 || len(lang) > 8 {
		return false
	}
	for _, c := range lang {
		if !(c == '-' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
			return false
		}
	}
	return true
}

func renderPage(w http.ResponseWriter, status int, v pageView) {
	var buf bytes.Buffer
	if err := sessionPage.Execute(&buf, v); err != nil {
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action *; base-uri 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// handleHostedGet shows the session. Opening it is the person starting the
// flow: Not Started moves to In Progress (and webhooks fire).
func (s *Sim) handleHostedGet(w http.ResponseWriter, r *http.Request) {
	lang := r.PathValue("lang")
	if !validLang(lang) {
		notFound(w)
		return
	}
	s.mu.Lock()
	sess := s.byToken[r.PathValue("token")]
	if sess == nil || sess.deleted {
		s.mu.Unlock()
		renderPage(w, http.StatusNotFound, pageView{Missing: true, Lang: "en", Title: "Session not found"})
		return
	}
	// HEAD (link previews) only looks; a GET is the person arriving.
	if sess.status == StatusNotStarted && r.Method == http.MethodGet {
		_ = s.startLocked(sess) // cannot fail from Not Started
	}
	v := s.pageViewLocked(sess, lang)
	s.mu.Unlock()
	renderPage(w, http.StatusOK, v)
}

// handleHostedPost is the person submitting a result. It completes the
// session, then sends the browser to the callback with
// ?verificationSessionId=…&status=… as Didit does, or back to the page.
func (s *Sim) handleHostedPost(w http.ResponseWriter, r *http.Request) {
	lang := r.PathValue("lang")
	if !validLang(lang) {
		notFound(w)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	form := func(k string) string { return strings.TrimSpace(r.PostForm.Get(k)) }
	ipf := IPFields{
		IPAddress:     form("ip_address"),
		IPCountry:     form("ip_country"),
		IPCountryCode: strings.ToUpper(form("ip_country_code")),
		IPState:       form("ip_state"),
		IPCity:        form("ip_city"),
	}
	outcome := form("outcome")

	s.mu.Lock()
	sess := s.byToken[r.PathValue("token")]
	if sess == nil || sess.deleted {
		s.mu.Unlock()
		renderPage(w, http.StatusNotFound, pageView{Missing: true, Lang: "en", Title: "Session not found"})
		return
	}
	var err error
	switch {
	case !openForUser(sess.status):
		err = errors.New("this session is already finished")
	case outcome == "abandon":
		err = s.abandonLocked(sess, ipf)
	default:
		err = s.completeLocked(sess, Outcome{Preset: outcome, IP: ipf})
	}
	if err != nil {
		v := s.pageViewLocked(sess, lang)
		s.mu.Unlock()
		v.IP = ipf
		v.Message = userMessage(err)
		status := http.StatusBadRequest
		if !v.Open {
			status = http.StatusConflict
		}
		renderPage(w, status, v)
		return
	}
	target := s.pageURLLocked(sess, lang)
	if sess.callback != nil {
		target = callbackURL(*sess.callback, sess.id, sess.status)
	}
	s.mu.Unlock()
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func userMessage(err error) string {
	msg := err.Error()
	for _, prefix := range []string{ErrInvalidInput.Error() + ": ", ErrInvalidTransition.Error() + ": "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return msg
}

// callbackURL appends Didit's redirect parameters to the callback, keeping
// any query it already has.
func callbackURL(callback, sessionID, status string) string {
	u, err := url.Parse(callback)
	if err != nil {
		return callback
	}
	q := u.Query()
	q.Set("verificationSessionId", sessionID)
	q.Set("status", status)
	u.RawQuery = q.Encode()
	return u.String()
}

// placeholderPNG stands in for every media file (portraits, document
// images): a small grey square.
var placeholderPNG = func() []byte {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = 0xc8
	}
	img.SetGray(4, 4, color.Gray{Y: 0x80})
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}()

// handleMedia serves the placeholder behind the decision's pre-signed-style
// media URLs, for sessions that exist.
func (s *Sim) handleMedia(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sess, ok := s.sessions[r.PathValue("session")]
	s.mu.Unlock()
	if !ok || sess == nil || !strings.HasSuffix(r.PathValue("file"), ".png") {
		notFound(w)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(placeholderPNG)
}
