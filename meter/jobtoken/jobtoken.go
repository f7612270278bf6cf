// Package jobtoken signs and checks the tokens with which an upstream
// reports a job's progress: a token is scoped to one job of one account
// and signed with the gateway's job secret,
// "cgjob_" + base64url(account "\n" job) + "." + base64url(HMAC-SHA256).
// Nothing is stored per token; every gateway sharing the secret accepts
// it.
package jobtoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/creditgate/creditgate/meter"
)

// Prefix starts every token.
const Prefix = "cgjob_"

var b64 = base64.RawURLEncoding

// Sign returns the token of a job of account, signed with key.
func Sign(key []byte, account, job string) string {
	msg := account + "\n" + job
	return Prefix + b64.EncodeToString([]byte(msg)) + "." + b64.EncodeToString(mac(key, msg))
}

func mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("creditgate job token v1\n" + msg))
	return m.Sum(nil)
}

// Parse checks a token against key and returns its account and job; a
// token that is malformed or signed with another key is
// meter.ECodeInvalidAPIKey.
func Parse(key []byte, tok string) (account, job string, err error) {
	bad := meter.Errorf(meter.ECodeInvalidAPIKey, "invalid job token: send the X-Meter-Job-Token the job's submission carried, as Authorization: Bearer <token>")
	rest, ok := strings.CutPrefix(tok, Prefix)
	if !ok {
		return "", "", bad
	}
	enc, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return "", "", bad
	}
	msg, err1 := b64.DecodeString(enc)
	got, err2 := b64.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(got, mac(key, string(msg))) {
		return "", "", bad
	}
	account, job, ok = strings.Cut(string(msg), "\n")
	if !ok {
		return "", "", bad
	}
	return account, job, nil
}

// LoadOrCreateSecret reads the secret kept at path, creating it (and its
// directory) on first use. Concurrent callers, in one process or several,
// all get the one secret that was linked into place first.
func LoadOrCreateSecret(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Written aside, then linked into place: a process that reads the file
	// never sees it half written, and the first one linked wins.
	tmp, err := os.CreateTemp(dir, ".job_secret-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(rand.Text() + rand.Text())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	return os.ReadFile(path)
}
