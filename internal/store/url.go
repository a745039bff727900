package store

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/redis/rueidis"
)

// urlForms are the URLs Dial accepts, for messages.
const urlForms = "the accepted forms are redis://[user:password@]host:port/db, " +
	"rediss://… for TLS and unix:///path/to/redis.sock (valkey:// and valkeys:// alike)"

// hostPort is an address without a scheme: "127.0.0.1:6379",
// "localhost:6379", "[::1]:6379".
var hostPort = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]+(/[0-9]+)?$`)

// badURL says why rueidis.ParseURL refused raw, with the URL the user most
// likely meant where that can be shown without risking a password.
func badURL(raw, safe string, err error) error {
	if hostPort.MatchString(raw) {
		return fmt.Errorf("%w %s: it has no scheme: write redis://%s; %s", ErrBadURL, raw, raw, urlForms)
	}
	if u, perr := url.Parse(raw); perr == nil && u.Host == "" && u.Scheme != "unix" && !strings.Contains(raw, "@") {
		switch u.Scheme {
		case "redis", "rediss", "valkey", "valkeys":
			rest := strings.TrimLeft(strings.TrimPrefix(raw, u.Scheme+":"), "/")
			return fmt.Errorf("%w %s: it is malformed (no host after %s://): write %s://%s; %s",
				ErrBadURL, raw, u.Scheme, u.Scheme, rest, urlForms)
		}
	}
	return fmt.Errorf("%w %s: %s; %s", ErrBadURL, safe, urlProblem(err), urlForms)
}

// outOfRange reports whether err is the server refusing the URL's
// database number.
func outOfRange(err error) bool {
	return err != nil && strings.Contains(err.Error(), "DB index is out of range")
}

// noSuchDB says that the URL's database does not exist, and how many the
// server has if it lets us ask (CONFIG GET databases).
func noSuchDB(ctx context.Context, opt rueidis.ClientOption, safe string) error {
	db := opt.SelectDB
	opt.SelectDB = 0
	if rc, err := rueidis.NewClient(opt); err == nil {
		defer rc.Close()
		m, err := rc.Do(ctx, rc.B().ConfigGet().Parameter("databases").Build()).AsStrMap()
		if n, perr := strconv.Atoi(m["databases"]); err == nil && perr == nil && n > 0 {
			return fmt.Errorf("%w %s: database %d does not exist on that server (it has %d databases: 0 to %d)",
				ErrBadURL, safe, db, n, n-1)
		}
	}
	return fmt.Errorf("%w %s: database %d does not exist on that server (the index is out of range)", ErrBadURL, safe, db)
}
