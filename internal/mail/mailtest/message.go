package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

// Message is one message the server accepted (250 after DATA).
type Message struct {
	From     string   // envelope sender (MAIL FROM)
	To       []string // envelope recipients (RCPT TO)
	Header   mail.Header
	Subject  string // decoded
	Text     string // decoded text/plain part
	HTML     string // decoded text/html part
	Raw      []byte // the message as received
	TLS      bool   // the session was encrypted (STARTTLS or implicit)
	AuthUser string // the user that authenticated, if any

	// PartTypes lists the media types of the leaf parts in order, e.g.
	// ["text/plain", "text/html"], so tests can check the alternative order.
	PartTypes []string
	// TopType is the media type of the message itself, e.g. multipart/alternative.
	TopType string
}

// Code returns the single run of exactly six digits in the text part.
func (m Message) Code() (string, error) {
	var found []string
	s := m.Text
	for i := 0; i < len(s); {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j-i == 6 {
			found = append(found, s[i:j])
		}
		i = j
	}
	switch len(found) {
	case 0:
		return "", errors.New("mailtest: no 6-digit number in the text part")
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("mailtest: %d 6-digit numbers in the text part, want one", len(found))
}

var wordDecoder = &mime.WordDecoder{}

func parseMessage(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, fmt.Errorf("read message: %w", err)
	}
	m := Message{Header: msg.Header, Raw: raw}
	if m.Subject, err = wordDecoder.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return Message{}, fmt.Errorf("decode subject: %w", err)
	}
	mt, params, err := contentType(msg.Header.Get("Content-Type"))
	if err != nil {
		return Message{}, err
	}
	m.TopType = mt
	if err := m.walk(mt, params, msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
		return Message{}, err
	}
	return m, nil
}

func contentType(v string) (string, map[string]string, error) {
	if v == "" {
		return "text/plain", nil, nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "", nil, fmt.Errorf("content-type %q: %w", v, err)
	}
	return mt, params, nil
}

// walk descends into multipart bodies and keeps the first text/plain and
// text/html leaves.
func (m *Message) walk(mt string, params map[string]string, cte string, body io.Reader) error {
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart() // raw: we decode the transfer encoding ourselves
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			pmt, pparams, err := contentType(p.Header.Get("Content-Type"))
			if err != nil {
				return err
			}
			if err := m.walk(pmt, pparams, p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	m.PartTypes = append(m.PartTypes, mt)
	b, err := io.ReadAll(decodeTransfer(cte, body))
	if err != nil {
		return fmt.Errorf("%s part: %w", mt, err)
	}
	if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		return fmt.Errorf("%s part: unsupported charset %q", mt, cs)
	}
	switch {
	case mt == "text/plain" && m.Text == "":
		m.Text = string(b)
	case mt == "text/html" && m.HTML == "":
		m.HTML = string(b)
	}
	return nil
}

func decodeTransfer(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r) // it skips the line breaks itself
	}
	return r
}
