package classtest

import "testing"

// The zone cache must never change a verdict: each name is judged the same
// the first time (loaded) and every time after (cached, or loaded again).
func TestValidTimezoneSameVerdictWhenRepeated(t *testing.T) {
	cases := map[string]bool{
		"Europe/London":       true,
		"America/Los_Angeles": true,
		"UTC":                 true,
		"Local":               false,
		"":                    false,
		"Mars/Olympus_Mons":   false,
		"europe/london ":      false,
		"../../etc/passwd":    false,
	}
	for round := range 3 {
		for name, want := range cases {
			if got := validTimezone(name); got != want {
				t.Errorf("round %d: validTimezone(%q) = %v, want %v", round, name, got, want)
			}
		}
	}
	if _, cached := knownZones.Load("Mars/Olympus_Mons"); cached {
		t.Error("an invalid zone was cached; the cache must hold only zones that loaded")
	}
}
