package wallet

import "fmt"

// The helpers keep the sentinel first so errors.Is works and the message
// still says what was wrong.

func errInvalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidAddress}, args...)...)
}

func errMalformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformedSignature}, args...)...)
}

func errMismatch(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSignatureMismatch}, args...)...)
}
