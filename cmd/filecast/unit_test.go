package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filecast/filecast/internal/redistest"
)

// The systemd units in contrib/systemd, checked three ways: by
// systemd-analyze verify where it is installed; by reading their settings
// against what the binary does (exit codes, stop time, flags); and by
// running their ExecStart, expanded as systemd expands it, against a real
// password-protected Redis.

const unitDir = "../../contrib/systemd"

// unitFile is a parsed unit: settings by section, then key, in order.
type unitFile map[string]map[string][]string

// readUnit parses a unit file: comments, sections, KEY=VALUE lines and
// lines continued with a trailing backslash.
func readUnit(t *testing.T, name string) unitFile {
	t.Helper()
	f, err := os.Open(filepath.Join(unitDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	var cont string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok && !strings.HasPrefix(line, "#") {
			cont = strings.TrimSpace(s)
			continue
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: cannot parse %q", name, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one returns the only value of section's key, failing if there is none.
func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s= is set %d times, want once", section, key, len(v))
	}
	return v[0]
}

// execStart expands the unit's ExecStart as systemd does: %i is the
// instance, ${NAME} one word (empty if unset), $NAME alone a list of words
// split at spaces. env holds the variables.
func execStart(t *testing.T, u unitFile, instance string, env map[string]string) []string {
	t.Helper()
	var argv []string
	for _, w := range strings.Fields(u.one(t, "Service", "ExecStart")) {
		w = strings.ReplaceAll(w, "%i", instance)
		if name, ok := strings.CutPrefix(w, "$"); ok && !strings.HasPrefix(name, "{") {
			argv = append(argv, strings.Fields(env[name])...)
			continue
		}
		for {
			i := strings.Index(w, "${")
			if i < 0 {
				break
			}
			j := strings.Index(w[i:], "}")
			w = w[:i] + env[w[i+2:i+j]] + w[i+j+1:]
		}
		argv = append(argv, w)
	}
	return argv
}

// unitEnv returns the environment a unit's service gets: its Environment=
// lines, then the environment files given (for the unit's
// EnvironmentFile= lines, in order), then extra.
func unitEnv(t *testing.T, u unitFile, instance string, files []string, extra map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range u["Service"]["Environment"] {
		k, v, _ := strings.Cut(strings.ReplaceAll(kv, "%i", instance), "=")
		env[k] = v
	}
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(unitDir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("%s: %q is not NAME=value", name, l)
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			env[k] = v
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// The units pass systemd-analyze verify: no unknown key, no bad value, a
// command line systemd can run (with the test's binary in place of
// /usr/local/bin/filecast, which verify requires to exist).
func TestUnitsVerify(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd): the units are checked by TestUnitsSettings and TestUnitsRun only")
	}
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"filecast-recv@.service", "filecast-follow@.service"} {
		b, err := os.ReadFile(filepath.Join(unitDir, name))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		writeFile(t, p, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/filecast", cliBin)), 0o644)
		units = append(units, p)
	}
	// verify exits 0 after warnings such as an unknown key: any output fails.
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, units...)...).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The settings that make the units behave as docs/OPERATIONS.md says,
// against the binary's own exit codes and stop time.
func TestUnitsSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		unit    string
		command []string // ExecStart's words after the binary, in order
	}{
		{"filecast-recv@.service", []string{"recv", "${FILECAST_CHANNEL}", "--group=${FILECAST_GROUP}", "--member=%i",
			"--dir=${FILECAST_DIR}", "--exec=${FILECAST_EXEC}", "--password-file=${CREDENTIALS_DIRECTORY}/redis-password", "$FILECAST_ARGS"}},
		{"filecast-follow@.service", []string{"send", "${FILECAST_CHANNEL}", "--follow",
			"--password-file=${CREDENTIALS_DIRECTORY}/redis-password", "$FILECAST_ARGS", "$FILECAST_PATHS"}},
	} {
		t.Run(tc.unit, func(t *testing.T) {
			u := readUnit(t, tc.unit)
			words := strings.Fields(u.one(t, "Service", "ExecStart"))
			if words[0] != "/usr/local/bin/filecast" || strings.Join(words[1:], " ") != strings.Join(tc.command, " ") {
				t.Errorf("ExecStart=%s\nwant /usr/local/bin/filecast %s", strings.Join(words, " "), strings.Join(tc.command, " "))
			}
			want := map[string]string{
				"Type":                     "exec",
				"LoadCredential":           "redis-password:/etc/filecast/redis-password",
				"Restart":                  "on-failure",
				"RestartPreventExitStatus": strconv.Itoa(exitUsage),
				"SuccessExitStatus":        strconv.Itoa(exitInterrupted),
				"KillMode":                 "mixed",
				"NoNewPrivileges":          "yes",
				"ProtectSystem":            "strict",
				"PrivateTmp":               "yes",
			}
			for k, v := range want {
				if got := u.one(t, "Service", k); got != v {
					t.Errorf("%s=%s, want %s", k, got, v)
				}
			}
			stop, err := time.ParseDuration(u.one(t, "Service", "TimeoutStopSec"))
			if err != nil || stop < 2*stopBound {
				t.Errorf("TimeoutStopSec=%s: want at least twice the stop bound of %v (%v)", u.one(t, "Service", "TimeoutStopSec"), stopBound, err)
			}
			if rs, err := time.ParseDuration(u.one(t, "Service", "RestartSec")); err != nil || rs < time.Second {
				t.Errorf("RestartSec=%s: want a pause of a second or more between restarts (%v)", u.one(t, "Service", "RestartSec"), err)
			}
			if len(u["Service"]["EnvironmentFile"]) == 0 || u.one(t, "Install", "WantedBy") != "multi-user.target" {
				t.Errorf("want EnvironmentFile= and WantedBy=multi-user.target")
			}
		})
	}
	recv := readUnit(t, "filecast-recv@.service")
	if got := recv["Service"]["EnvironmentFile"]; strings.Join(got, " ") != "-/etc/filecast/recv.env -/etc/filecast/recv-%i.env" {
		t.Errorf("EnvironmentFile=%q, want the shared then the instance's file, both optional", got)
	}
	if recv.one(t, "Service", "User") != "filecast" || recv.one(t, "Service", "StateDirectory") != "filecast/%i" {
		t.Errorf("the receiver runs as user filecast with /var/lib/filecast/INSTANCE as its directory")
	}
}

// Each unit's ExecStart, expanded with the example environment files as
// systemd would, runs the real binary with a password credential against
// a Redis that requires it: the receiver receives a file into its
// directory, a receiver configured for --exec runs its command, the
// follower follows a log, and a unit missing its settings exits 2, which
// RestartPreventExitStatus keeps from restarting.
func TestUnitsRun(t *testing.T) {
	t.Parallel()
	const password = "s3cret-unit"
	c := newCLI(t, redistest.Config{RequirePass: password})
	creds := t.TempDir()
	writeFile(t, filepath.Join(creds, "redis-password"), []byte(password+"\n"), 0o600)
	run := func(argv []string) *proc {
		if argv[0] != "/usr/local/bin/filecast" {
			t.Fatalf("ExecStart runs %s", argv[0])
		}
		return c.startWith([]string{"FILECAST_REDIS=" + strings.Replace(c.url, ":"+password+"@", "@", 1)}, false, argv[1:]...)
	}
	if strings.Contains(strings.Replace(c.url, ":"+password+"@", "@", 1), password) {
		t.Fatalf("cannot take the password out of %s", c.url)
	}

	recvUnit := readUnit(t, "filecast-recv@.service")
	out := filepath.Join(t.TempDir(), "web-01")
	env := unitEnv(t, recvUnit, "web-01", []string{"recv.env", "recv-web-01.env"},
		map[string]string{"CREDENTIALS_DIRECTORY": creds, "FILECAST_DIR": out, "FILECAST_CHANNEL": "unit"})
	if env["FILECAST_GROUP"] != "web" || env["FILECAST_EXEC"] != "" {
		t.Fatalf("recv.env: group %q, exec %q; want web and none", env["FILECAST_GROUP"], env["FILECAST_EXEC"])
	}
	recv := run(execStart(t, recvUnit, "web-01", env))
	waitJoined(t, c.srv, "unit", "web", recv)

	got := filepath.Join(t.TempDir(), "got")
	env["FILECAST_DIR"], env["FILECAST_EXEC"], env["FILECAST_GROUP"] = "", "cat > "+got, "exec"
	execRecv := run(execStart(t, recvUnit, "web-02", env))
	waitJoined(t, c.srv, "unit", "exec", execRecv)

	src := filepath.Join(t.TempDir(), "app.conf")
	writeFile(t, src, []byte("listen 80\n"), 0o644)
	expectOK(t, c.runWith(nil, []string{"FILECAST_PASSWORD=" + password}, "send", "unit", src))
	waitFor(t, 20*time.Second, "app.conf at both receivers", func() bool {
		b, _ := os.ReadFile(got)
		_, err := os.Stat(filepath.Join(out, "app.conf"))
		return err == nil && string(b) == "listen 80\n"
	})
	sameFile(t, filepath.Join(out, "app.conf"), []byte("listen 80\n"))
	if st := c.status("unit"); len(st.Groups) != 2 {
		t.Errorf("groups %+v, want web and exec", st.Groups)
	}
	sigterm(t, recv, "stopped")
	sigterm(t, execRecv, "stopped")

	followUnit := readUnit(t, "filecast-follow@.service")
	logDir := t.TempDir()
	fenv := unitEnv(t, followUnit, "nginx", []string{"follow-nginx.env"}, map[string]string{"CREDENTIALS_DIRECTORY": creds})
	if fenv["FILECAST_CHANNEL"] != "logs" || !strings.Contains(fenv["FILECAST_PATHS"], "*") {
		t.Fatalf("follow-nginx.env: channel %q, paths %q; want logs and a glob", fenv["FILECAST_CHANNEL"], fenv["FILECAST_PATHS"])
	}
	fenv["FILECAST_PATHS"] = strings.ReplaceAll(fenv["FILECAST_PATHS"], "/var/log/nginx", logDir)
	logOut := t.TempDir()
	logRecv := c.startWith([]string{"FILECAST_PASSWORD=" + password}, false, "recv", "logs", "--group", "central", "--dir", logOut)
	waitJoined(t, c.srv, "logs", "central", logRecv)
	writeFile(t, filepath.Join(logDir, "access.log"), nil, 0o644)
	follow := run(execStart(t, followUnit, "nginx", fenv))
	waitFor(t, 20*time.Second, "the follower to start", func() bool { return strings.Contains(follow.stderr(), "following ") })
	writeFile(t, filepath.Join(logDir, "site-error.log"), []byte("an error\n"), 0o644) // matches the glob later
	waitFor(t, 20*time.Second, "the follower to follow the new error log", func() bool {
		return strings.Contains(follow.stderr(), "site-error.log")
	})
	sigterm(t, follow, "stopped")
	sigterm(t, logRecv, "stopped")

	delete(env, "FILECAST_CHANNEL")
	expectFail(t, run(execStart(t, recvUnit, "web-03", env)).wait(), exitUsage)
}
