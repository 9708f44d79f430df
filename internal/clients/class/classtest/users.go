package classtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/rollcall/rollcall/internal/simhttp"
)

// PageLimitDefault is the page size of GET /api/v1/users when page is given without limit.
const PageLimitDefault = 20

// pageLimitMax is the documented maximum of limit.
const pageLimitMax = 1000

var userRoles = []string{"admin", "instructor", "instructional-designer"}

type userJSON struct {
	ID               int64    `json:"id"`
	ExtUserID        *string  `json:"ext_user_id"`
	Email            string   `json:"email"`
	UserName         string   `json:"user_name"`
	Roles            []string `json:"roles"`
	IsZoomConfigured bool     `json:"is_zoom_configured"`
}

func userOut(u *userRec) userJSON {
	roles := slices.Clone(u.roles)
	if roles == nil {
		roles = []string{}
	}
	return userJSON{ID: u.id, ExtUserID: nullable(u.ext), Email: u.email, UserName: u.name, Roles: roles}
}

// userBy finds a user by id, ext_user_id or email (case-insensitive).
func (st *store) userBy(kind, value string) *userRec {
	for _, u := range st.users {
		switch kind {
		case "id":
			if strconv.FormatInt(u.id, 10) == value {
				return u
			}
		case "ext_user_id":
			if u.ext != "" && u.ext == value {
				return u
			}
		case "email":
			if u.email != "" && strings.EqualFold(u.email, value) {
				return u
			}
		}
	}
	return nil
}

// userNotFound names the user by id or ext_user_id, never by email.
func userNotFound(kind, value string) simhttp.Reply {
	if kind == "email" {
		return errReply(http.StatusNotFound, "user not found")
	}
	return errReply(http.StatusNotFound, "user "+value+" not found")
}

// userIdentifier reads the one identifier of Get a User and Remove a User.
func userIdentifier(q url.Values, required bool) (kind, value string, rep *simhttp.Reply) {
	kind, value, rep = pickOne(map[string]string{"id": q.Get("id"), "ext_user_id": q.Get("ext_user_id"), "email": q.Get("email")},
		required, "id", "ext_user_id", "email")
	if rep == nil && kind == "id" {
		if _, ok := parseID(value); !ok {
			fe := fieldErrors{}
			fe.add("id", "The id must be an integer.")
			r := fe.reply()
			return "", "", &r
		}
	}
	return kind, value, rep
}

// getUsers serves Get All Users (paginated when page or limit is given) and Get a User.
func (s *Server) getUsers(r *http.Request, _ []byte) simhttp.Reply {
	q := r.URL.Query()
	kind, value, rep := userIdentifier(q, false)
	if rep != nil {
		return *rep
	}
	if kind != "" {
		u := s.data.userBy(kind, value)
		if u == nil {
			return userNotFound(kind, value)
		}
		return simhttp.JSON(http.StatusOK, []userJSON{userOut(u)})
	}
	all := make([]userJSON, 0, len(s.data.users))
	for _, u := range s.data.users {
		all = append(all, userOut(u))
	}
	if !q.Has("page") && !q.Has("limit") {
		return simhttp.JSON(http.StatusOK, all)
	}
	fe := fieldErrors{}
	page, limit := 1, PageLimitDefault
	if q.Has("page") {
		n, err := strconv.Atoi(q.Get("page"))
		if err != nil || n < 1 {
			fe.add("page", "The page must be a positive integer.")
		}
		page = n
	}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		switch {
		case err != nil || n < 1:
			fe.add("limit", "The limit must be a positive integer.")
		case n > pageLimitMax:
			fe.add("limit", "The limit must not be greater than 1000.")
		}
		limit = n
	}
	if len(fe) > 0 {
		return fe.reply()
	}
	total := len(all)
	pages := (total + limit - 1) / limit
	lo := min((page-1)*limit, total)
	hi := min(lo+limit, total)
	type pagination struct {
		TotalRecords int  `json:"total_records"`
		CurrentPage  int  `json:"current_page"`
		TotalPages   int  `json:"total_pages"`
		NextPage     *int `json:"next_page"`
		PrevPage     *int `json:"prev_page"`
	}
	p := pagination{TotalRecords: total, CurrentPage: page, TotalPages: pages}
	if page < pages {
		next := page + 1
		p.NextPage = &next
	}
	if page > 1 {
		prev := page - 1
		p.PrevPage = &prev
	}
	return simhttp.JSON(http.StatusOK, struct {
		Data       []userJSON `json:"data"`
		Pagination pagination `json:"pagination"`
	}{all[lo:hi], p})
}

type putUserBody struct {
	IdentifiedBy string          `json:"identified_by"`
	ID           json.RawMessage `json:"id"`
	ExtUserID    *string         `json:"ext_user_id"` // null or absent: unchanged
	Email        *string         `json:"email"`       // null or absent: unchanged
	UserName     string          `json:"user_name"`
	Roles        *[]string       `json:"roles"` // null or absent: unchanged (instructor for a new user)
}

// putUser serves Create or Update a User: the user found by identified_by is updated,
// otherwise a new one is created (with a generated id, whatever id was given).
func (s *Server) putUser(_ *http.Request, body []byte) simhttp.Reply {
	var b putUserBody
	if rep := decodeBody(body, &b); rep != nil {
		return *rep
	}
	id, idOK := flexID(b.ID)
	ext, email := deref(b.ExtUserID), deref(b.Email)
	fe := fieldErrors{}
	switch b.IdentifiedBy {
	case "":
		fe.required("identified_by")
	case "id", "ext_user_id", "email":
		given := map[string]string{"id": id, "ext_user_id": ext, "email": email}[b.IdentifiedBy]
		if given == "" {
			fe.add(b.IdentifiedBy, "The "+attr(b.IdentifiedBy)+" field is required when identified by is "+b.IdentifiedBy+".")
		}
	default:
		fe.add("identified_by", "The selected identified by is invalid.")
	}
	if !idOK {
		fe.add("id", "The id must be an integer.")
	}
	if b.UserName == "" {
		fe.required("user_name")
	}
	fe.checkEmail("email", email)
	if b.Roles != nil {
		for _, role := range *b.Roles {
			if !slices.Contains(userRoles, role) {
				fe.add("roles", "The selected roles is invalid.")
				break
			}
		}
	}
	if len(fe) > 0 {
		return fe.reply()
	}

	identifier := map[string]string{"id": id, "ext_user_id": ext, "email": email}[b.IdentifiedBy]
	u := s.data.userBy(b.IdentifiedBy, identifier)
	if u == nil && email == "" {
		fe.required("email") // a new user needs an email to sign in with
	}
	if other := s.data.userBy("email", email); email != "" && other != nil && other != u {
		fe.add("email", msgEmailTaken)
	}
	if other := s.data.userBy("ext_user_id", ext); ext != "" && other != nil && other != u {
		fe.add("ext_user_id", "The ext user id has already been taken.")
	}
	if len(fe) > 0 {
		return fe.reply()
	}

	status := http.StatusOK
	if u == nil {
		status = http.StatusCreated
		u = &userRec{id: s.data.nextUserID, roles: []string{"instructor"}}
		s.data.nextUserID++
		s.data.users = append(s.data.users, u)
	}
	u.name = b.UserName
	if b.ExtUserID != nil {
		u.ext = ext
	}
	if b.Email != nil && email != "" {
		u.email = email
	}
	if b.Roles != nil {
		u.roles = slices.Clone(*b.Roles)
	}
	return simhttp.JSON(status, userOut(u))
}

// deleteUser serves Remove a User, answering the removed user.
func (s *Server) deleteUser(r *http.Request, _ []byte) simhttp.Reply {
	kind, value, rep := userIdentifier(r.URL.Query(), true)
	if rep != nil {
		return *rep
	}
	u := s.data.userBy(kind, value)
	if u == nil {
		return userNotFound(kind, value)
	}
	s.data.users = slices.DeleteFunc(s.data.users, func(x *userRec) bool { return x == u })
	return simhttp.JSON(http.StatusOK, userOut(u))
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
