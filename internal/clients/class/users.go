package class

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// User is a non-learner of Class: an admin, instructor or instructional
// designer. Pupils are never users; they exist only as enrollments.
type User struct {
	ID int64 `json:"id"`
	// ExtUserID is the organisation's identifier; empty when Class has null.
	ExtUserID        string   `json:"ext_user_id"`
	Email            string   `json:"email"`
	UserName         string   `json:"user_name"`
	Roles            []string `json:"roles"`
	IsZoomConfigured bool     `json:"is_zoom_configured"`
}

// UnmarshalJSON accepts ext_user_id as a string, a number or null, and id as a
// number or a numeric string.
func (u *User) UnmarshalJSON(b []byte) error {
	var w struct {
		ID               flexInt64  `json:"id"`
		ExtUserID        flexString `json:"ext_user_id"`
		Email            string     `json:"email"`
		UserName         string     `json:"user_name"`
		Roles            []string   `json:"roles"`
		IsZoomConfigured bool       `json:"is_zoom_configured"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*u = User{
		ID:               int64(w.ID),
		ExtUserID:        string(w.ExtUserID),
		Email:            w.Email,
		UserName:         w.UserName,
		Roles:            w.Roles,
		IsZoomConfigured: w.IsZoomConfigured,
	}
	return nil
}

// UserRef names one user by exactly one of its identifiers.
type UserRef struct {
	ID        int64
	ExtUserID string
	Email     string
}

// query returns the ref as query parameters, or an error if it does not set
// exactly one identifier.
func (r UserRef) query(op string) (url.Values, error) {
	q := url.Values{}
	n := 0
	if r.ID != 0 {
		q.Set("id", strconv.FormatInt(r.ID, 10))
		n++
	}
	if r.ExtUserID != "" {
		q.Set("ext_user_id", r.ExtUserID)
		n++
	}
	if r.Email != "" {
		q.Set("email", r.Email)
		n++
	}
	if n != 1 {
		return nil, invalidRequest(op, "exactly one of ID, ExtUserID, Email must be set, got %d", n)
	}
	return q, nil
}

func (r UserRef) matches(u User) bool {
	switch {
	case r.ID != 0:
		return u.ID == r.ID
	case r.ExtUserID != "":
		return u.ExtUserID == r.ExtUserID
	default:
		return strings.EqualFold(strings.TrimSpace(u.Email), strings.TrimSpace(r.Email))
	}
}

// Pagination is the paging block of a paginated listing.
type Pagination struct {
	TotalRecords int  `json:"total_records"`
	CurrentPage  int  `json:"current_page"`
	TotalPages   int  `json:"total_pages"`
	NextPage     *int `json:"next_page"`
	PrevPage     *int `json:"prev_page"`
}

// PutUserRequest creates or updates a user. IdentifiedBy ("id", "ext_user_id"
// or "email") says which field finds an existing user, and that field must be
// set; the others are written.
type PutUserRequest struct {
	IdentifiedBy string
	ID           int64
	ExtUserID    string
	Email        string
	UserName     string
	Roles        []string
}

type putUserBody struct {
	IdentifiedBy string   `json:"identified_by"`
	ID           int64    `json:"id,omitempty"`
	ExtUserID    string   `json:"ext_user_id,omitempty"`
	Email        string   `json:"email,omitempty"`
	UserName     string   `json:"user_name"`
	Roles        []string `json:"roles,omitempty"`
}

// GetUser returns the user ref names. An empty answer, an answer in which no
// user carries ref's identifier, or a 404 is an error matching [ErrNotFound].
func (c *Client) GetUser(ctx context.Context, ref UserRef) (User, error) {
	q, err := ref.query("GetUser")
	if err != nil {
		return User{}, err
	}
	r := request{method: http.MethodGet, path: pathUsers, query: q}
	resp, err := c.do(ctx, r)
	if err != nil {
		return User{}, err
	}
	users, err := decodeOneOrMany[User](r, resp)
	if err != nil {
		return User{}, err
	}
	// The filter is checked here as well, so that a Class that ignored the
	// query parameter and listed everyone cannot hand back the wrong user.
	for _, u := range users {
		if ref.matches(u) {
			return u, nil
		}
	}
	return User{}, notFound(r)
}

// ListUsers returns one page of users. page and limit are sent when positive
// (limit at most 1,000). Class answers either a bare array, which is taken as
// the one and only page, or {"data": [...], "pagination": {...}}.
func (c *Client) ListUsers(ctx context.Context, page, limit int) ([]User, Pagination, error) {
	q := url.Values{}
	if page > 0 {
		q.Set("page", strconv.Itoa(page))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	r := request{method: http.MethodGet, path: pathUsers, query: q}
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, Pagination{}, err
	}
	return decodeUserPage(r, resp)
}

// decodeUserPage decodes both shapes of Get All Users.
func decodeUserPage(r request, resp response) ([]User, Pagination, error) {
	trimmed := bytes.TrimSpace(resp.body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var w struct {
			Data       []User      `json:"data"`
			Pagination *Pagination `json:"pagination"`
		}
		if err := decode(r, resp, &w); err != nil {
			return nil, Pagination{}, err
		}
		if w.Pagination == nil {
			return w.Data, singlePage(len(w.Data)), nil
		}
		return w.Data, *w.Pagination, nil
	}
	var users []User
	if err := decode(r, resp, &users); err != nil {
		return nil, Pagination{}, err
	}
	return users, singlePage(len(users)), nil
}

// singlePage describes an unpaginated answer: everything, on page 1 of 1.
func singlePage(n int) Pagination {
	return Pagination{TotalRecords: n, CurrentPage: 1, TotalPages: 1}
}

// PutUser creates the user or updates the one found by req.IdentifiedBy.
// created is true when Class answered 201.
func (c *Client) PutUser(ctx context.Context, req PutUserRequest) (u User, created bool, err error) {
	switch req.IdentifiedBy {
	case "id":
		if req.ID == 0 {
			return User{}, false, invalidRequest("PutUser", "identified by id but ID is 0")
		}
	case "ext_user_id":
		if req.ExtUserID == "" {
			return User{}, false, invalidRequest("PutUser", "identified by ext_user_id but ExtUserID is empty")
		}
	case "email":
		if req.Email == "" {
			return User{}, false, invalidRequest("PutUser", "identified by email but Email is empty")
		}
	default:
		return User{}, false, invalidRequest("PutUser", "IdentifiedBy must be id, ext_user_id or email")
	}
	r := request{method: http.MethodPut, path: pathUsers, body: putUserBody(req)}
	resp, err := c.do(ctx, r)
	if err != nil {
		return User{}, false, err
	}
	users, err := decodeOneOrMany[User](r, resp)
	if err != nil {
		return User{}, false, err
	}
	if len(users) == 0 {
		return User{}, false, &decodeError{method: r.method, path: r.path, status: resp.status, err: errEmptyAnswer}
	}
	return users[0], resp.status == http.StatusCreated, nil
}

// DeleteUser removes the user ref names.
func (c *Client) DeleteUser(ctx context.Context, ref UserRef) error {
	q, err := ref.query("DeleteUser")
	if err != nil {
		return err
	}
	_, err = c.do(ctx, request{method: http.MethodDelete, path: pathUsers, query: q})
	return err
}
