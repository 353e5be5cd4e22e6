# The answers of Kbuild's compiler probes, remembered between builds of one module (kernels/module.sh).
#
# Every `make M=DIR modules` re-runs the probes of the kernel's Makefiles (cc-option, as-instr, ld-option, ...:
# scripts/Makefile.compiler's try-run), each a compiler run on /dev/null: 31 of them, 0.55 s of a 0.74 s rebuild
# of a one-file module measured here, with the same answers every time. Kbuild kept such a cache itself in
# 4.15-4.17 (the .cache.mk of scripts/Kbuild.include) and dropped it in 4.18, when Kconfig took over the compiler
# tests that decide the .config; the probes left in the Makefiles have run uncached since.
#
# module.sh names this file in MAKEFILES, so make reads it before the kernel's Makefile, and in every sub-make.
# `override` keeps Makefile.compiler's own `try-run =` from replacing this one. The cache is KLAB_PROBE_DB, a
# makefile this file includes: one variable per probe, named after the probe's text after make expanded it
# (the compiler, every flag, "$TMP" unexpanded; klab-probe-name below makes it a variable name), whose value is
# "ok" or "no". Only the exit status of a probe is used by try-run, so that is all that is kept. Everything
# that can change an answer without changing the text, the compiler, assembler and linker binaries, is
# module.sh's stamp, a comment on the first line: a different toolchain empties the cache.
#
# A hit is a variable lookup inside make: no process at all (a shell and a grep per probe cost a rebuild 0.2 s
# here). A miss runs the probe as try-run does and appends its answer.
ifneq ($(KLAB_PROBE_DB),)
-include $(KLAB_PROBE_DB)
# make would otherwise try to remake an included makefile by the kernel's rules.
$(KLAB_PROBE_DB): ;

define klab-newline


endef
klab-empty :=
klab-space := $(klab-empty) $(klab-empty)
klab-tab := $(klab-empty)	$(klab-empty)
klab-hash := \#
klab-comma := ,
klab-lparen := (
klab-rparen := )
# A probe's text as a variable name: make's names may hold anything but whitespace, ':', '#' and '='; '$',
# parentheses, commas and backslashes would be read again where the name is used or written, so each of these
# becomes '@' and a letter, '@' itself first, so two texts never share a name.
klab-probe-name = klab-probe@$(subst $(klab-space),@s,$(subst $(klab-tab),@t,$(subst :,@c,$(subst $(klab-hash),@h,$\
	$(subst =,@e,$(subst $$,@d,$(subst $(klab-lparen),@l,$(subst $(klab-rparen),@r,$(subst $(klab-comma),@m,$\
	$(subst \,@b,$(subst @,@a,$(1))))))))))))

# A probe whose text spans lines cannot be one variable of the cache: it runs as Makefile.compiler runs it.
override try-run = $(if $(findstring $(klab-newline),$(1)),$(klab-try-run-plain),$(klab-try-run-cached))

klab-try-run-plain = $(shell set -e;						\
	TMP=$(TMPOUT)/tmp;							\
	trap "rm -rf $(TMPOUT)" EXIT;						\
	mkdir -p $(TMPOUT);							\
	if ($(1)) >/dev/null 2>&1;						\
	then echo "$(2)";							\
	else echo "$(3)";							\
	fi)

klab-try-run-cached = $(if $(filter ok,$($(call klab-probe-name,$(1)))),$(2),$\
	$(if $(filter no,$($(call klab-probe-name,$(1)))),$(3),$(klab-try-run-miss)))

# The name goes into the cache as make wrote it, quoted for the shell (printf, not echo: dash's echo would turn
# an as-instr's "\n" into a line break).
klab-try-run-miss = $(shell set -e;						\
	k='$(subst ','\'',$(call klab-probe-name,$(1)))';			\
	TMP=$(TMPOUT)/tmp;							\
	trap "rm -rf $(TMPOUT)" EXIT;						\
	mkdir -p $(TMPOUT);							\
	if ($(1)) >/dev/null 2>&1;						\
	then printf '%s := ok\n' "$$k" >>"$$KLAB_PROBE_DB"; echo "$(2)";	\
	else printf '%s := no\n' "$$k" >>"$$KLAB_PROBE_DB"; echo "$(3)";	\
	fi)
endif
