package telemetry

import "testing"

func TestEndpointTemplate(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/api/v1/users", "/api/v1/users"},
		{"/api/v1/classes/42", "/api/v1/classes/{id}"},
		{"/api/v1/classes/42/enrollments", "/api/v1/classes/{id}/enrollments"},
		{"/api/v1/classes/8e1f0c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b", "/api/v1/classes/{id}"},
		{"/api/v1/classes/ABCDEFAB-CDEF-ABCD-EFAB-CDEFABCDEFAB", "/api/v1/classes/{id}"},
		{"/api/v1/users?email=ann@school.org", "/api/v1/users"},
		{"/api/v1/users/ann@school.org", "/api/v1/users/{id}"},
		{"/api/v1/users/ann%40school.org/roles", "/api/v1/users/{id}/roles"},
		{"/v1/events/01HZX3QK7M4N5P6R7S8T9V0W1X", "/v1/events/{id}"},
		{"/v1/students/pupil-12345", "/v1/students/{id}"},
		{"/v1/students/a3f9c2e1d4b5a6f7", "/v1/students/{id}"},
		{"/oauth2/token", "/oauth2/token"},
		{"/api/v2beta/classes/{id}", "/api/v2beta/classes/{id}"},
		{"/api/v1/classes/{id}", "/api/v1/classes/{id}"},
		{"https://springfield.class.com/base/api/v1/classes/7?x=1#f", "/base/api/v1/classes/{id}"},
		{"/", "/"},
		{"", ""},
		{"/api/v1/classes/", "/api/v1/classes/"},
		{"/api/v1/classes/2024-09-01", "/api/v1/classes/{id}"},
	} {
		if got := EndpointTemplate(c.in); got != c.want {
			t.Errorf("EndpointTemplate(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
