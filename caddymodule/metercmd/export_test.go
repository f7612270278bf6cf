package metercmd

import (
	"bytes"
	"strings"

	"github.com/spf13/cobra"
)

// Run runs `meter args...` as Caddy's command line does, with stdin read
// from in and taken for a terminal when terminal is set. It returns what
// the command printed (stdout and stderr) and its error.
func Run(in string, terminal bool, args ...string) (string, error) {
	var out bytes.Buffer
	c := &client{out: &out, errOut: &out, in: strings.NewReader(in), interactive: func() bool { return terminal }}
	root := &cobra.Command{Use: "meter", SilenceUsage: true, SilenceErrors: true}
	c.addCommands(root)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.Execute()
	return out.String(), err
}
