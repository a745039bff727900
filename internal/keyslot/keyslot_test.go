package keyslot

import "testing"

func TestSlotMatchesRedis(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	for key, want := range map[string]uint16{
		"123456789":            0x31C3 % Slots, // the CRC16 check value
		"foo":                  12182,
		"bar":                  5061,
		"{user1000}.following": Slot("user1000"),
		"foo{}{bar}":           Slot("foo{}{bar}"),
		"foo{{bar}}zap":        Slot("{bar"),
		"{}":                   Slot("{}"),
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
	if crc16("123456789") != 0x31C3 {
		t.Errorf("crc16 check value = %#x, want 0x31c3", crc16("123456789"))
	}
}

func TestTagInvertsSlot(t *testing.T) {
	longest := 0
	for s := range uint16(Slots) {
		tag := Tag(s)
		if got := Slot("fc:{" + tag + "}:c:x"); got != s {
			t.Fatalf("Slot with Tag(%d) = %q is %d", s, tag, got)
		}
		longest = max(longest, len(tag))
	}
	if longest > 4 {
		t.Errorf("longest tag has %d characters; want at most 4", longest)
	}
}
