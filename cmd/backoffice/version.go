package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

const versionUsage = "usage: backoffice version\n"

// runVersion prints the module version and VCS revision this binary was
// built from.
func runVersion(_ context.Context, a *app, args []string) error {
	pos, err := parseInterspersed(newFlagSet("version", a), a, versionUsage, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef(versionUsage, "version: takes no arguments")
	}
	fmt.Fprintln(a.stdout, "backoffice", version())
	return nil
}

// version describes the build: module version, revision (+dirty), Go.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown build)"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(len(s.Value), 12)]
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " " + rev + modified
	}
	return v + " " + bi.GoVersion
}
