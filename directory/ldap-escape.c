/* ldap-escape.c - values put into LDAP filters (RFC 4515) and DNs
 * (RFC 4514). Every value that comes from a client or a setting goes
 * through here, so a login name can never change a filter's shape. */
#include "ldap-private.h"

#include <string.h>

static int append_hex(struct buf *out, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char esc[3] = {'\\', hex[c >> 4], hex[c & 0x0f]};
	return buf_append(out, esc, sizeof(esc));
}

int ldapx_filter_escape(struct buf *out, const char *value, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		/* RFC 4515 section 3: these five must be escaped; UTF-8 may stay. */
		bool special = c == '*' || c == '(' || c == ')' || c == '\\' || c == '\0';
		if (special ? append_hex(out, c) < 0 : buf_append_char(out, (char)c) < 0)
			return -1;
	}
	return 0;
}

static bool dn_special(unsigned char c, size_t i, size_t n)
{
	if (strchr("\"+,;<>\\=", c) != NULL && c != '\0')
		return true;
	/* A leading space or '#', or a trailing space, would be read otherwise. */
	return (i == 0 && (c == ' ' || c == '#')) || (i + 1 == n && c == ' ');
}

int ldapx_dn_escape(struct buf *out, const char *value, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];
		int rc;
		if (c == '\0')
			rc = append_hex(out, c);
		else if (dn_special(c, i, n))
			rc = buf_append_char(out, '\\') < 0 ? -1 : buf_append_char(out, (char)c);
		else
			rc = buf_append_char(out, (char)c);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int ldapx_filter_any(struct buf *out, const char *base_filter, const char *attrs, const char *value,
                     size_t n)
{
	int rc = buf_printf(out, "(&%s(|", base_filter);
	const char *p = attrs;
	while (rc == 0 && *p != '\0') {
		size_t len = strcspn(p, " ,");
		if (len > 0) {
			rc = buf_printf(out, "(%.*s=", (int)len, p);
			if (rc == 0)
				rc = ldapx_filter_escape(out, value, n);
			if (rc == 0)
				rc = buf_append_char(out, ')');
		}
		p += len;
		p += strspn(p, " ,");
	}
	return rc < 0 ? -1 : buf_append_str(out, "))");
}
