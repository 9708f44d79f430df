package classtest

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

func TestUsersLifecycle(t *testing.T) {
	t.Parallel()
	h := setup(t)
	body := map[string]any{
		"identified_by": "email", "ext_user_id": "888", "email": "mail@mail.com",
		"user_name": "Bob Smith", "roles": []string{"admin", "instructor"},
	}
	var created, updated map[string]any
	h.do("PUT", "/api/v1/users", body).want(t, http.StatusCreated).decode(t, &created)
	wantKeys(t, created, "id", "ext_user_id", "email", "user_name", "roles", "is_zoom_configured")
	if created["id"] != float64(1) || created["ext_user_id"] != "888" || created["is_zoom_configured"] != false {
		t.Errorf("created = %v", created)
	}
	// Update by id; a null ext_user_id leaves it as it was.
	h.do("PUT", "/api/v1/users", map[string]any{
		"identified_by": "id", "id": 1, "ext_user_id": nil, "email": "mail@mail.com",
		"user_name": "Robert Smith", "roles": []string{"instructor"},
	}).want(t, http.StatusOK).decode(t, &updated)
	if updated["id"] != float64(1) || updated["user_name"] != "Robert Smith" || updated["ext_user_id"] != "888" {
		t.Errorf("updated = %v", updated)
	}

	var got []map[string]any
	h.do("GET", "/api/v1/users?email="+url.QueryEscape("MAIL@mail.com"), nil).want(t, http.StatusOK).decode(t, &got)
	if len(got) != 1 || got[0]["id"] != float64(1) {
		t.Errorf("GET by email = %v", got)
	}
	h.do("GET", "/api/v1/users?ext_user_id=888", nil).want(t, http.StatusOK).decode(t, &got)
	if len(got) != 1 || got[0]["user_name"] != "Robert Smith" {
		t.Errorf("GET by ext_user_id = %v", got)
	}
	h.do("GET", "/api/v1/users?ext_user_id=999", nil).wantJSON(t, http.StatusNotFound, `{"error":"user 999 not found"}`)
	h.do("GET", "/api/v1/users?id=1&email=mail@mail.com", nil).want(t, http.StatusBadRequest)

	// A second user may not take the email.
	h.do("PUT", "/api/v1/users", map[string]any{
		"identified_by": "ext_user_id", "ext_user_id": "999", "email": "mail@mail.com", "user_name": "Other",
	}).wantJSON(t, http.StatusBadRequest, `{"error":"Request failed validation","data":{"email":["The email has already been taken."]}}`)
	h.do("PUT", "/api/v1/users", map[string]any{
		"identified_by": "email", "email": "x@mail.com", "user_name": "X", "roles": []string{"student"},
	}).wantJSON(t, http.StatusBadRequest, `{"error":"Request failed validation","data":{"roles":["The selected roles is invalid."]}}`)
	h.do("PUT", "/api/v1/users", map[string]any{"identified_by": "ext_user_id", "email": "x@mail.com", "user_name": "X"}).
		wantJSON(t, http.StatusBadRequest, `{"error":"Request failed validation","data":{"ext_user_id":["The ext user id field is required when identified by is ext_user_id."]}}`)

	var deleted map[string]any
	h.do("DELETE", "/api/v1/users?ext_user_id=888", nil).want(t, http.StatusOK).decode(t, &deleted)
	if deleted["id"] != float64(1) || deleted["email"] != "mail@mail.com" {
		t.Errorf("DELETE answer = %v", deleted)
	}
	h.do("DELETE", "/api/v1/users?id=1", nil).wantJSON(t, http.StatusNotFound, `{"error":"user 1 not found"}`)
	h.do("DELETE", "/api/v1/users", nil).want(t, http.StatusBadRequest)
	if st := h.srv.State(); len(st.Users) != 0 {
		t.Errorf("users after DELETE = %+v", st.Users)
	}
}

func TestUsersPagination(t *testing.T) {
	t.Parallel()
	h := setup(t)
	for i := range 5 {
		h.srv.SeedUser(User{Email: fmt.Sprintf("u%d@mail.com", i), UserName: fmt.Sprintf("User %d", i)})
	}

	var bare []map[string]any
	h.do("GET", "/api/v1/users", nil).want(t, http.StatusOK).decode(t, &bare)
	if len(bare) != 5 || bare[0]["id"] != float64(1) || bare[4]["id"] != float64(5) {
		t.Errorf("GET all = %v, want 5 users by id", bare)
	}

	var page struct {
		Data       []map[string]any `json:"data"`
		Pagination map[string]any   `json:"pagination"`
	}
	h.do("GET", "/api/v1/users?page=2&limit=2", nil).want(t, http.StatusOK).decode(t, &page)
	if len(page.Data) != 2 || page.Data[0]["id"] != float64(3) || page.Data[1]["id"] != float64(4) {
		t.Errorf("page 2 data = %v, want users 3 and 4", page.Data)
	}
	wantPagination := map[string]any{"total_records": float64(5), "current_page": float64(2), "total_pages": float64(3),
		"next_page": float64(3), "prev_page": float64(1)}
	if fmt.Sprint(page.Pagination) != fmt.Sprint(wantPagination) {
		t.Errorf("pagination = %v, want %v", page.Pagination, wantPagination)
	}
	h.do("GET", "/api/v1/users?page=3&limit=2", nil).want(t, http.StatusOK).decode(t, &page)
	if len(page.Data) != 1 || page.Pagination["next_page"] != nil || page.Pagination["prev_page"] != float64(2) {
		t.Errorf("last page = %+v", page)
	}
	h.do("GET", "/api/v1/users?page=0", nil).want(t, http.StatusBadRequest)
	h.do("GET", "/api/v1/users?limit=1001", nil).want(t, http.StatusBadRequest)
}
