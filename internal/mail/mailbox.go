package mail

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kycgate/kycgate/internal/kyc"
)

var _ kyc.Mailer = (*Mailbox)(nil)

// MailboxCapacity is how many messages a Mailbox keeps; older ones are dropped.
const MailboxCapacity = 200

// Mailbox is a development kyc.Mailer: it renders each code mail exactly as
// SMTP would and keeps the most recent ones in memory, viewable through
// Handler. It delivers nothing, so it must never serve real users.
type Mailbox struct {
	render *renderer

	mu   sync.Mutex
	msgs []Message // oldest first
}

// NewMailbox returns a mailbox using the default subject, product and templates.
func NewMailbox() *Mailbox {
	m, err := NewMailboxWithConfig(Config{})
	if err != nil {
		panic(err) // the embedded templates are checked by the tests
	}
	return m
}

// NewMailboxWithConfig uses cfg's Subject, Product and TemplateDir, so the
// development inbox shows what a deployment would send. URL and From are
// ignored.
func NewMailboxWithConfig(cfg Config) (*Mailbox, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r, err := newRenderer(cfg)
	if err != nil {
		return nil, err
	}
	return &Mailbox{render: r, msgs: make([]Message, 0, MailboxCapacity)}, nil
}

// SendCode renders the mail and stores it.
func (m *Mailbox) SendCode(ctx context.Context, cm kyc.CodeMail) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	msg, err := m.render.render(cm)
	if err != nil {
		return fmt.Errorf("mail: send code to %s: %w", MaskAddress(cm.To), err)
	}
	msg.ID = strings.ToLower(rand.Text()[:16])
	msg.At = time.Now().UTC()

	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.msgs) == MailboxCapacity {
		copy(m.msgs, m.msgs[1:])
		m.msgs = m.msgs[:len(m.msgs)-1]
	}
	m.msgs = append(m.msgs, msg)
	return nil
}

// Messages returns a copy of the stored messages, newest first.
func (m *Mailbox) Messages() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Message, len(m.msgs))
	for i, msg := range m.msgs {
		out[len(m.msgs)-1-i] = msg
	}
	return out
}

// MessagesTo returns a copy of the messages sent to addr, newest first;
// the address is compared without regard to case, and "" means every
// message.
func (m *Mailbox) MessagesTo(addr string) []Message {
	msgs := m.Messages()
	if addr == "" {
		return msgs
	}
	out := msgs[:0]
	for _, msg := range msgs {
		if strings.EqualFold(msg.To, addr) {
			out = append(out, msg)
		}
	}
	return out
}

func (m *Mailbox) find(id string) (Message, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range m.msgs {
		if msg.ID == id {
			return msg, true
		}
	}
	return Message{}, false
}
