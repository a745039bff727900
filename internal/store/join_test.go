package store

import (
	"context"
	"slices"
	"testing"
)

// Join tells a group it created from one that was there: a mistyped group
// name must not pass unnoticed. The script is idempotent, and a retry of
// the same call (same call id, after a lost reply) still says it created
// it, while another call in the same millisecond does not.
func TestJoinNewTellsCreatedFromExisting(t *testing.T) {
	ch, _ := setup(t)
	ctx := context.Background()
	created, others, err := ch.JoinNew(ctx, "web-vm")
	if err != nil || !created || len(others) != 0 {
		t.Fatalf("first join = %v, %v, %v; want created, no others", created, others, err)
	}
	created, others, err = ch.JoinNew(ctx, "web-vm")
	if err != nil || created || others != nil {
		t.Fatalf("second join = %v, %v, %v; want joined an existing group", created, others, err)
	}
	if err := ch.Join(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	created, others, err = ch.JoinNew(ctx, "web-mv")
	if err != nil || !created || !slices.Equal(others, []string{"db", "web-vm"}) {
		t.Fatalf("join web-mv = %v, %v, %v; want created, others [db web-vm]", created, others, err)
	}

	// The same call again, as a retry after a lost reply would send it.
	at, call := "1700000000000", callID()
	for i := range 2 {
		m, err := ch.lua(ctx, "join group", luaJoin, "retried", at, call)
		if err != nil {
			t.Fatal(err)
		}
		reply, _ := m.ToArray()
		if n, _ := reply[0].AsInt64(); n != 1 {
			t.Errorf("call %d of the same join: reply %v, want 1 (created)", i+1, reply[0])
		}
	}

	// A dropped group joined again is new again.
	if _, err := ch.Drop(ctx, "db", ""); err != nil {
		t.Fatal(err)
	}
	if created, _, err := ch.JoinNew(ctx, "db"); err != nil || !created {
		t.Fatalf("join of a dropped group = %v, %v; want created", created, err)
	}
}
