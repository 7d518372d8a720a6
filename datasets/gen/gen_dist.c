/* Quantities with units and the distributions a spec may name.  Sampling
 * uses GSL's generators so the shapes are the textbook ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include "gen.h"

struct unit_suffix {
	const char *s;
	double mul;
};

static const struct unit_suffix time_units[] = {
	{ "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 }, { NULL, 0 },
};
static const struct unit_suffix size_units[] = {
	{ "", 1 }, { "B", 1 }, { "K", 1024 }, { "KiB", 1024 }, { "M", 1048576 },
	{ "MiB", 1048576 }, { NULL, 0 },
};

const char *gen_quantity_parse(const char *text, enum gen_unit unit,
			       double *out)
{
	char *end;
	if (!*text || strchr(" \t+", *text))
		return "empty number";
	double v = strtod(text, &end);
	if (end == text)
		return "not a number";
	if (!isfinite(v) || v < 0)
		return "number must be finite and not negative";
	if (unit == GEN_UNIT_NUMBER) {
		if (*end)
			return "unexpected text after number";
		*out = v;
		return NULL;
	}
	const struct unit_suffix *u = unit == GEN_UNIT_TIME ? time_units : size_units;
	for (; u->s; u++) {
		if (strcmp(end, u->s) == 0) {
			*out = v * u->mul;
			if (*out > 1e15)
				return "quantity too large";
			return NULL;
		}
	}
	return unit == GEN_UNIT_TIME ? "duration needs a unit: ns, us, ms or s"
				     : "size unit must be B, K, KiB, M or MiB";
}

struct dist_name {
	const char *name;
	uint8_t kind;
	int nargs;
};

static const struct dist_name dists[] = {
	{ "const", GD_CONST, 1 },     { "exp", GD_EXP, 1 },
	{ "uniform", GD_UNIFORM, 2 }, { "normal", GD_NORMAL, 2 },
	{ "lognormal", GD_LOGNORMAL, 2 }, { "pareto", GD_PARETO, 2 },
	{ NULL, 0, 0 },
};

const char *gen_dist_parse(const char *text, enum gen_unit unit,
			   struct gen_dist *d)
{
	const char *open = strchr(text, '(');
	if (!open) { /* a bare quantity is a constant */
		d->kind = GD_CONST;
		d->b = 0;
		return gen_quantity_parse(text, unit, &d->a);
	}
	size_t nlen = (size_t)(open - text);
	const struct dist_name *dn = dists;
	for (; dn->name; dn++)
		if (strlen(dn->name) == nlen && strncmp(text, dn->name, nlen) == 0)
			break;
	if (!dn->name)
		return "unknown distribution (const, exp, uniform, normal, lognormal, pareto)";
	size_t len = strlen(open);
	if (len < 2 || open[len - 1] != ')')
		return "distribution arguments must end with ')'";
	char args[128];
	if (len - 2 >= sizeof(args))
		return "distribution arguments too long";
	memcpy(args, open + 1, len - 2);
	args[len - 2] = '\0';
	double v[2] = { 0, 0 };
	int n = 0;
	char *save = NULL;
	for (char *a = strtok_r(args, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		while (*a == ' ' || *a == '\t')
			a++;
		size_t al = strlen(a);
		while (al && (a[al - 1] == ' ' || a[al - 1] == '\t'))
			a[--al] = '\0';
		if (n >= dn->nargs)
			return "too many distribution arguments";
		/* lognormal's sigma and pareto's shape are plain numbers */
		enum gen_unit u = (n == 1 && (dn->kind == GD_LOGNORMAL ||
					      dn->kind == GD_PARETO))
					  ? GEN_UNIT_NUMBER : unit;
		const char *why = gen_quantity_parse(a, u, &v[n]);
		if (why)
			return why;
		n++;
	}
	if (n != dn->nargs)
		return dn->nargs == 1 ? "distribution takes one argument"
				      : "distribution takes two arguments";
	d->kind = dn->kind;
	d->a = v[0];
	d->b = v[1];
	switch (d->kind) {
	case GD_UNIFORM:
		if (d->b < d->a)
			return "uniform(a,b) needs a <= b";
		break;
	case GD_LOGNORMAL:
		if (d->a <= 0)
			return "lognormal median must be positive";
		if (d->b > 10)
			return "lognormal sigma must be at most 10";
		break;
	case GD_PARETO:
		if (d->a <= 0 || d->b <= 1)
			return "pareto needs scale > 0 and shape > 1 (a finite mean)";
		break;
	case GD_EXP:
		if (d->a <= 0)
			return "exp mean must be positive";
		break;
	}
	return NULL;
}

double gen_dist_sample(const struct gen_dist *d, gsl_rng *r)
{
	double v;
	switch (d->kind) {
	case GD_EXP:
		v = gsl_ran_exponential(r, d->a);
		break;
	case GD_UNIFORM:
		v = d->a + (d->b - d->a) * gsl_rng_uniform(r);
		break;
	case GD_NORMAL:
		v = d->a + gsl_ran_gaussian_ziggurat(r, d->b);
		break;
	case GD_LOGNORMAL: /* median * e^(sigma Z); the ziggurat is the fast normal */
		v = d->a * exp(d->b * gsl_ran_gaussian_ziggurat(r, 1.0));
		break;
	case GD_PARETO:
		v = gsl_ran_pareto(r, d->b, d->a);
		break;
	default:
		v = d->a;
	}
	if (!(v > 0))
		return 0;
	return v > 1e15 ? 1e15 : v; /* heavy tails stay inside 64 bits */
}

double gen_dist_mean(const struct gen_dist *d)
{
	switch (d->kind) {
	case GD_EXP:
		return d->a;
	case GD_UNIFORM:
		return (d->a + d->b) / 2;
	case GD_NORMAL:
		return d->a;
	case GD_LOGNORMAL:
		return d->a * exp(d->b * d->b / 2);
	case GD_PARETO:
		return d->b * d->a / (d->b - 1);
	default:
		return d->a;
	}
}
