package filecast_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/filecast/filecast"
	"github.com/filecast/filecast/internal/redistest"
)

// sendReceive sends a file through c and receives it back, checking it.
func sendReceive(t *testing.T, c *filecast.Client) {
	t.Helper()
	ctx := context.Background()
	if err := c.Join(ctx, "tls", "g"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(11, 3<<20)
	mustSend(t, c, "tls", "f", data, filecast.SendOptions{})
	c.SendEOF(ctx, "tls")
	col := newCollector()
	_, wait := receive(t, c, "tls", col.handle, filecast.ReceiveOptions{Group: "g", UntilEOF: true})
	if err := wait(); err != nil {
		t.Fatalf("Receive over TLS: %v", err)
	}
	if got, _ := col.get("f"); !bytes.Equal(got, data) {
		t.Fatal("file received over TLS differs")
	}
}

func TestTLSWithCustomCA(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{TLS: true})
	files := srv.TLSFiles()
	ctx := context.Background()

	// The test CA is not one the system trusts.
	_, err := filecast.New(ctx, filecast.Options{URL: srv.TLSURL()})
	if !errors.Is(err, filecast.ErrUnavailable) || !strings.Contains(err.Error(), "Options.CAFile") {
		t.Fatalf("New without the CA = %v, want ErrUnavailable pointing to Options.CAFile", err)
	}
	c, err := filecast.New(ctx, filecast.Options{URL: srv.TLSURL(), CAFile: files.CA})
	if err != nil {
		t.Fatalf("New with the CA: %v", err)
	}
	defer c.Close()
	sendReceive(t, c)
}

func TestTLSClientCertificate(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{TLS: true, ClientCerts: true})
	files := srv.TLSFiles()
	ctx := context.Background()

	_, err := filecast.New(ctx, filecast.Options{URL: srv.TLSURL(), CAFile: files.CA})
	if !errors.Is(err, filecast.ErrUnavailable) || !strings.Contains(err.Error(), "Options.CertFile") {
		t.Fatalf("New without a client certificate = %v, want ErrUnavailable pointing to Options.CertFile", err)
	}
	c, err := filecast.New(ctx, filecast.Options{URL: srv.TLSURL(), CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey})
	if err != nil {
		t.Fatalf("New with a client certificate: %v", err)
	}
	defer c.Close()
	sendReceive(t, c)
}

func TestTLSSettingsAreChecked(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{TLS: true})
	files := srv.TLSFiles()
	for _, tc := range []struct {
		name string
		opt  filecast.Options
		want string
	}{
		{"CA file on a plain URL", filecast.Options{URL: srv.URL(), CAFile: files.CA}, "rediss://"},
		{"missing CA file", filecast.Options{URL: srv.TLSURL(), CAFile: files.CA + ".missing"}, "CA file"},
		{"CA file without PEM", filecast.Options{URL: srv.TLSURL(), CAFile: files.ServerKey}, "no PEM certificate"},
		{"certificate without key", filecast.Options{URL: srv.TLSURL(), CertFile: files.ClientCert}, "both"},
		{"key that does not match", filecast.Options{URL: srv.TLSURL(), CertFile: files.ClientCert, KeyFile: files.ServerKey}, "client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := filecast.New(context.Background(), tc.opt)
			if !errors.Is(err, filecast.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want ErrUsage mentioning %q", err, tc.want)
			}
		})
	}
}

func TestPasswordOptionReplacesTheURLs(t *testing.T) {
	const good, bad = "s3cret-pass", "wrong-pass"
	srv := redistest.Start(t, redistest.Config{RequirePass: good, TCP: true})
	url := strings.Replace(srv.TCPURL(), good, bad, 1)
	ctx := context.Background()
	_, err := filecast.New(ctx, filecast.Options{URL: url})
	if !errors.Is(err, filecast.ErrAuth) || strings.Contains(err.Error(), bad) {
		t.Fatalf("New with a wrong password = %v, want ErrAuth without the password", err)
	}
	_, err = filecast.New(ctx, filecast.Options{URL: srv.TCPURL(), Password: bad})
	if !errors.Is(err, filecast.ErrAuth) || strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), good) {
		t.Fatalf("New with a wrong Password = %v, want ErrAuth showing no password", err)
	}
	c, err := filecast.New(ctx, filecast.Options{URL: url, Password: good})
	if err != nil {
		t.Fatalf("New with the right Password over a wrong one in the URL: %v", err)
	}
	c.Close()
}
