package main

import (
	"flag"
	"fmt"
	"runtime/debug"
	"strings"

	dbversion "github.com/databricks/databricks-sdk-go/version"
	"go.temporal.io/sdk/temporal"
)

// sdkModules are the modules whose versions `starter version` reports, with
// the version each declares in its code: using those constants keeps both
// modules linked into the starter (and so in its build information) even
// once its own packages no longer import the Databricks SDK.
var sdkModules = []struct{ path, declared string }{
	{"go.temporal.io/sdk", "v" + temporal.SDKVersion},
	{"github.com/databricks/databricks-sdk-go", "v" + dbversion.Version},
}

func (m *Main) version(args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if _, err := parse(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = nil
	}
	fmt.Fprint(m.Stdout, versionText(info))
	return nil
}

// versionText is Cohort's version (the main module's, else its VCS
// revision, else "(devel)"), then the SDKs' module versions and Go's, one a
// line, from the binary's build information.
func versionText(info *debug.BuildInfo) string {
	if info == nil {
		return "cohort (devel): no build information in this binary\n"
	}
	version := info.Main.Version
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" && (version == "" || version == "(devel)") {
		version = "(devel) " + rev[:min(len(rev), 12)]
		if settings["vcs.modified"] == "true" {
			version += "+modified"
		}
	}
	if version == "" {
		version = "(devel)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cohort %s\n", version)
	for _, m := range sdkModules {
		fmt.Fprintf(&b, "%s %s\n", m.path, moduleVersion(info, m.path, m.declared))
	}
	fmt.Fprintf(&b, "go %s\n", info.GoVersion)
	return b.String()
}

// moduleVersion is path's version in the build information, else the
// version its code declares.
func moduleVersion(info *debug.BuildInfo, path, declared string) string {
	for _, d := range info.Deps {
		if d.Path != path {
			continue
		}
		if d.Replace != nil {
			return fmt.Sprintf("%s (replaced by %s)", d.Version, strings.TrimSpace(d.Replace.Path+" "+d.Replace.Version))
		}
		return d.Version
	}
	return declared
}
