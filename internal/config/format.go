package config

import (
	"fmt"
	"io"
	"strings"
)

// The structs that hold a [Secret] print through a Format method of their own. Without
// it, fmt prints a pointer to one of them (Tenant.DataHub, an element of []*Tenant)
// under a verb that does not suit pointers, such as %s, in its "%!s(...)" mode, which
// ignores every Format and String method below it, Secret's included, and the secret
// would be printed. Each method prints a method-less copy of the struct, so the output
// is what fmt would print for the struct itself, with the secrets redacted by their own
// methods.

type (
	plainConfig  Config
	plainNATS    NATS
	plainTenant  Tenant
	plainClass   Class
	plainDataHub DataHub
	plainHUBmis  HUBmis
)

// Format prints the configuration with its secrets redacted.
func (c Config) Format(f fmt.State, verb rune) { formatPlain(f, verb, "Config", plainConfig(c)) }

// Format prints the settings with the password redacted.
func (n NATS) Format(f fmt.State, verb rune) { formatPlain(f, verb, "NATS", plainNATS(n)) }

// Format prints the tenant with its secrets redacted.
func (t Tenant) Format(f fmt.State, verb rune) { formatPlain(f, verb, "Tenant", plainTenant(t)) }

// Format prints the settings with the API key redacted.
func (c Class) Format(f fmt.State, verb rune) { formatPlain(f, verb, "Class", plainClass(c)) }

// Format prints the settings with the secrets redacted.
func (d DataHub) Format(f fmt.State, verb rune) { formatPlain(f, verb, "DataHub", plainDataHub(d)) }

// Format prints the settings with the client secret redacted.
func (h HUBmis) Format(f fmt.State, verb rune) { formatPlain(f, verb, "HUBmis", plainHUBmis(h)) }

// formatPlain prints v, the method-less copy of the struct named name, as fmt would
// print the struct, type name included under %#v.
func formatPlain(f fmt.State, verb rune, name string, v any) {
	s := fmt.Sprintf(fmt.FormatString(f, verb), v)
	if verb == 'v' && f.Flag('#') {
		if i := strings.IndexByte(s, '{'); i >= 0 {
			s = "config." + name + s[i:]
		}
	}
	_, _ = io.WriteString(f, s)
}
