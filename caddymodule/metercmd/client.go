package metercmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"golang.org/x/term"
)

// client calls the admin API and talks to the user.
type client struct {
	address, config, adapter string
	json                     bool
	out, errOut              io.Writer
	in                       io.Reader
	// interactive says whether in is a terminal a question can be asked on.
	interactive func() bool
}

func newClient() *client {
	return &client{out: os.Stdout, errOut: os.Stderr, in: os.Stdin,
		interactive: func() bool { return term.IsTerminal(int(os.Stdin.Fd())) }}
}

// confirm asks before an operation that cannot be undone. --yes answers
// for the user; without a terminal to ask on (a script, a pipe) and
// without --yes, the operation is refused rather than done unasked.
func (c *client) confirm(yes bool, what string) error {
	if yes {
		return nil
	}
	if !c.interactive() {
		return fmt.Errorf("%s cannot be undone: add --yes to confirm (stdin is not a terminal to ask on)", what)
	}
	fmt.Fprintf(c.errOut, "%s cannot be undone. Continue? [y/N] ", what)
	line, _ := bufio.NewReader(c.in).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a == "y" || a == "yes" {
		return nil
	}
	return fmt.Errorf("canceled: nothing was changed")
}

// call sends one admin request and decodes its JSON answer into out.
func (c *client) call(method, uri string, body any, out any) error {
	raw, err := c.send(method, uri, body)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("unexpected answer from the admin API: %s", raw)
	}
	return nil
}

// do sends one admin request and prints its answer, decoded into T (or
// as it is, with --json).
func do[T any](c *client, method, uri string, body any, print func(io.Writer, T)) error {
	if c.json {
		raw, err := c.send(method, uri, body)
		if err != nil {
			return err
		}
		_, err = c.out.Write(raw)
		return err
	}
	var v T
	if err := c.call(method, uri, body, &v); err != nil {
		return err
	}
	print(c.out, v)
	return nil
}

// adminAddress is --address, else CREDITGATE_ADMIN, else the admin
// option of --config, else Caddy's default (localhost:2019).
func (c *client) adminAddress() (string, error) {
	addr := c.address
	if addr == "" && c.config == "" {
		addr = os.Getenv("CREDITGATE_ADMIN")
	}
	return caddycmd.DetermineAdminAPIAddress(addr, nil, c.config, c.adapter)
}

// send sends one admin request and returns its body.
func (c *client) send(method, uri string, body any) ([]byte, error) {
	addr, err := c.adminAddress()
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, rd)
	if err != nil {
		return nil, friendlyAdminError(addr, err)
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// friendlyAdminError says how to reach the admin API when it cannot be
// reached, and turns "caddy responded with error: HTTP 409: {json}" into
// the API's own message.
func friendlyAdminError(addr string, err error) error {
	msg := err.Error()
	// AdminAPIRequest flattens the network error into its text.
	if strings.HasPrefix(msg, "performing request:") {
		return fmt.Errorf("cannot reach the admin API at %s: is the gateway running? "+
			"Give its admin address with --address or CREDITGATE_ADMIN (%s)", addr, strings.TrimSpace(strings.TrimPrefix(msg, "performing request:")))
	}
	if i := strings.Index(msg, "{"); i >= 0 {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal([]byte(msg[i:]), &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s: %s", e.Error.Code, e.Error.Message)
		}
	}
	return err
}
