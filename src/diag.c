/* The diagnostic sink every stage reports failures through. */
#include <stdio.h>
#include "lp.h"

int lp_fail(struct lp_diag *d, int code, const char *fmt, ...)
{
	if (d && !d->code) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
		va_end(ap);
		d->code = code;
	}
	/* The exit code goes with the message shown: the first failure's. */
	return LP_ERR(d && d->code ? d->code : code);
}

int lp_exit_code(int ret)
{
	if (ret >= 0)
		return LP_EXIT_OK;
	if (ret <= -LP_ERR_BASE && ret > -(LP_ERR_BASE + 256))
		return -ret - LP_ERR_BASE;
	return LP_EXIT_INTERNAL;
}
