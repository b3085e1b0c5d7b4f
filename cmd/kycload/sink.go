package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is an SMTP server on loopback that accepts everything, pulls the
// six-digit code out of each message's text part and hands it to whoever
// waits for that recipient.
type sink struct {
	srv      *smtp.Server
	ln       net.Listener
	received atomic.Int64
	bad      atomic.Int64

	mu      sync.Mutex
	waiters map[string]chan string
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{ln: ln, waiters: map[string]chan string{}}
	srv := smtp.NewServer(s)
	srv.Domain = "sink.localhost"
	srv.MaxMessageBytes = 1 << 20
	srv.ReadTimeout = 60 * time.Second
	srv.WriteTimeout = 60 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv
	go srv.Serve(ln)
	return s, nil
}

func (s *sink) Addr() string { return s.ln.Addr().String() }

func (s *sink) Close() { s.srv.Close() }

// expect registers interest in the next code mailed to addr.
func (s *sink) expect(addr string) chan string {
	ch := make(chan string, 1)
	s.mu.Lock()
	s.waiters[strings.ToLower(addr)] = ch
	s.mu.Unlock()
	return ch
}

func (s *sink) forget(addr string) {
	s.mu.Lock()
	delete(s.waiters, strings.ToLower(addr))
	s.mu.Unlock()
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct {
	s  *sink
	to []string
}

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}
func (ss *sinkSession) Reset()        { ss.to = nil }
func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.received.Add(1)
	ss.s.mu.Lock()
	var waiting []chan string
	for _, to := range ss.to {
		if ch, ok := ss.s.waiters[strings.ToLower(to)]; ok {
			waiting = append(waiting, ch)
			delete(ss.s.waiters, strings.ToLower(to))
		}
	}
	ss.s.mu.Unlock()
	if len(waiting) == 0 {
		return nil // nobody reads this one: accepting it is the whole job
	}
	code, err := codeOf(raw)
	if err != nil {
		ss.s.bad.Add(1)
	}
	for _, ch := range waiting {
		ch <- code
	}
	return nil
}

// codeOf returns the single run of six digits in the message's text part.
func codeOf(raw []byte) (string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	text, err := textPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if err != nil {
		return "", err
	}
	for i := 0; i < len(text); {
		if text[i] < '0' || text[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		if j-i == 6 {
			return text[i:j], nil
		}
		i = j
	}
	return "", errors.New("no code in the text part")
}

func textPart(ctype, cte string, body io.Reader) (string, error) {
	mt, params, err := mime.ParseMediaType(ctype)
	if ctype == "" {
		mt, err = "text/plain", nil
	}
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return "", errors.New("no text part")
			}
			if t, err := textPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err == nil {
				return t, nil
			}
		}
	}
	if mt != "text/plain" {
		return "", errors.New("not text/plain")
	}
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	return string(b), err
}
