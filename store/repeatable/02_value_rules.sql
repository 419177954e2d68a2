-- Trigger preview (REQ-O-001): the filter matcher's value rules (pipelines/values.py,
-- pipelines/compiler.py) as SQL functions over the contacts projection, so that
-- pipelines/preview.py can turn a trigger's contact conditions into one WHERE clause. Migration
-- 0004_preview indexes the common conditions (tags, status, source) with them.
--
-- Each function mirrors one Python rule and is checked against it by
-- tests/pipelines/test_preview.py: ht_strip = str.strip(), ht_fold = str.casefold(),
-- ht_num = values.as_number, ht_key = values.normalize_key (as text: 's:' text, 'n:' number,
-- 'b:' boolean), ht_text = values.as_text, ht_empty = values.is_empty, ht_when = values.as_when.
-- A contact's state is read as the matcher sees it: the jsonb decoded by orjson, so a number
-- with a decimal point (or beyond 64 bits) is a double. The character tables (ht_strip,
-- ht_fold_unicode, ht_translate_digits) are generated from Python's unicodedata:
-- 01_unicode_tables.sql. The `LANGUAGE sql` functions are not STRICT (they return NULL for NULL
-- anyway), so that the planner inlines them into the query.
--
-- A repeatable migration (store/migrate.py): applied again, in one transaction, whenever this
-- text changes, and before the numbered migrations (0004's indexes use these functions), so it
-- may use only what Postgres has and 01_unicode_tables.sql defines. Every statement must be
-- safe to run again (CREATE OR REPLACE FUNCTION). That cannot change a function's arguments or
-- result type: give the new one another name, and drop the old one (with any index over it) in
-- a numbered migration; a function taken out of this file likewise stays until one drops it.
-- When a definition changes, migrate rebuilds the indexes over these functions, whose entries
-- the old definition computed.

CREATE OR REPLACE FUNCTION ht_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN octet_length(t) = char_length(t)
        THEN lower(t COLLATE "C") COLLATE "default"  -- "C": ASCII letters only, whatever the locale
        ELSE ht_fold_unicode(t) END
$$;

CREATE OR REPLACE FUNCTION ht_ascii_digits(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN octet_length(t) = char_length(t) THEN t ELSE ht_translate_digits(t) END
$$;

-- The double nearest to n, as a numeric: the shortest decimal that reads back as that double
-- below 2**53, the double's exact integer value above (where every double is an integer), so
-- that comparisons with exact integers come out as Python's do. Infinity beyond the doubles.
CREATE OR REPLACE FUNCTION ht_float(n numeric) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET extra_float_digits = 1 AS $$
DECLARE
    a numeric := abs(n);
    f float8;
    e int;
    m float8;
BEGIN
    IF a >= 1e308 AND a >= 2::numeric ^ 1024 - 2::numeric ^ 970 THEN
        RETURN CASE WHEN n > 0 THEN 'Infinity'::numeric ELSE '-Infinity'::numeric END;
    END IF;
    IF a = 0 OR (a < 1e-300 AND a * 2::numeric ^ 1075 <= 1) THEN
        RETURN 0;
    END IF;
    f := n::float8;
    IF abs(f) < 9007199254740992 THEN
        RETURN f::text::numeric;
    END IF;
    e := floor(ln(abs(f)) / ln(2))::int - 52;
    m := f / 2::float8 ^ e;
    WHILE abs(m) >= 9007199254740992 LOOP
        e := e + 1;
        m := f / 2::float8 ^ e;
    END LOOP;
    WHILE abs(m) < 4503599627370496 LOOP
        e := e - 1;
        m := f / 2::float8 ^ e;
    END LOOP;
    RETURN m::int8::numeric * 2::numeric ^ e;
END
$$;

-- Python's float() of a decimal literal's parts, without numeric's exponent and scale limits:
-- beyond the doubles' range the result is certain, and past 800 significant digits one
-- non-zero digit stands for the rest (it decides the rounding the same way).
CREATE OR REPLACE FUNCTION ht_float_parts(sign text, mantissa text, exponent text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    whole text := split_part(mantissa, '.', 1);
    digits text := whole || split_part(mantissa, '.', 2);
    sig text := ltrim(digits, '0');
    point bigint;
BEGIN
    IF sig = '' THEN
        RETURN 0;
    END IF;
    IF char_length(ltrim(ltrim(exponent, '+-'), '0')) > 12 THEN
        point := CASE WHEN left(exponent, 1) = '-' THEN -1000 ELSE 1000 END;
    ELSE
        point := char_length(whole) - (char_length(digits) - char_length(sig)) + exponent::bigint;
    END IF;
    IF point > 400 THEN
        RETURN (sign || 'Infinity')::numeric;
    ELSIF point < -400 THEN
        RETURN 0;
    END IF;
    sig := rtrim(sig, '0');
    IF char_length(sig) > 800 THEN
        sig := left(sig, 800) || '1';
    END IF;
    RETURN ht_float((sign || '0.' || sig || 'e' || point)::numeric);
END
$$;

-- values.as_number of a stripped, non-empty str: a numeric text (with any Unicode decimal
-- digits), an int unless it has '.', 'e' or 'E' or is longer than 4000 characters.
CREATE OR REPLACE FUNCTION ht_num_parse(s text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    m text[] := regexp_match(ht_ascii_digits(s),
        '^([-+]?)([0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE]([-+]?[0-9]+))?$');
BEGIN
    IF m IS NULL THEN
        RETURN NULL;
    ELSIF m[3] IS NULL AND strpos(m[2], '.') = 0 AND char_length(s) <= 4000 THEN
        RETURN (m[1] || m[2])::numeric;
    END IF;
    RETURN ht_float_parts(m[1], m[2], coalesce(m[3], '0'));
END
$$;

-- The same, quick for the common cases: a short int, or no number at all.
CREATE OR REPLACE FUNCTION ht_num_stripped(s text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN s ~ '^[-+]?[0-9]{1,15}$' THEN s::numeric
        WHEN s !~ '^[-+.0-9]' AND octet_length(s) = char_length(s) THEN NULL
        ELSE ht_num_parse(s) END
$$;

-- values.as_number of a str.
CREATE OR REPLACE FUNCTION ht_num_text(t text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t ~ '^[-+]?[0-9]{1,15}$' THEN t::numeric ELSE ht_num_stripped(ht_strip(t)) END
$$;

-- A jsonb number as orjson reads it: an int within 64 bits (signed or unsigned), else a double.
CREATE OR REPLACE FUNCTION ht_json_number(n numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN scale(n) = 0 AND n >= -9223372036854775808 AND n <= 18446744073709551615
        THEN n ELSE ht_float(n) END
$$;

CREATE OR REPLACE FUNCTION ht_num(j jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(j)
        WHEN 'number' THEN ht_json_number(j::numeric)
        WHEN 'string' THEN ht_num_text(j #>> '{}') END
$$;

-- The text of a number in keys: plain digits, no trailing zeros (pipelines/preview.py writes
-- the same for the filter's values).
CREATE OR REPLACE FUNCTION ht_canon(n numeric) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT trim_scale(n)::text
$$;

-- values.text_key of a stripped str: numbers and text beyond ASCII take the long way.
CREATE OR REPLACE FUNCTION ht_stripped_key_slow(s text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    n numeric := ht_num_stripped(s);
    f text;
BEGIN
    IF n IS NOT NULL THEN
        RETURN 'n:' || ht_canon(n);
    END IF;
    f := ht_fold(s);
    RETURN CASE WHEN f = 'true' OR f = 'false' THEN 'b:' ELSE 's:' END || f;
END
$$;

CREATE OR REPLACE FUNCTION ht_ascii_key(f text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN f = 'true' OR f = 'false' THEN 'b:' ELSE 's:' END || f
$$;

CREATE OR REPLACE FUNCTION ht_stripped_key(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN s = '' THEN NULL
        WHEN s ~ '^[-+.0-9]' OR octet_length(s) > char_length(s) THEN ht_stripped_key_slow(s)
        ELSE ht_ascii_key(lower(s COLLATE "C") COLLATE "default") END
$$;

-- values.text_key. Plain ASCII text (printable, no surrounding space, not starting like a
-- number: the pattern below) is the common case and the quick one.
CREATE OR REPLACE FUNCTION ht_text_key(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t ~ '^[!-*,/:-~]([ -~]*[!-~])?$'
        THEN ht_ascii_key(lower(t COLLATE "C") COLLATE "default")
        ELSE ht_stripped_key(ht_strip(t)) END
$$;

-- values.normalize_key of a scalar; a non-empty array or object is '*list' / '*obj', which no
-- filter value's key equals; empty values have none.
CREATE OR REPLACE FUNCTION ht_key(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(j)
        WHEN 'string' THEN ht_text_key(j #>> '{}')
        WHEN 'number' THEN 'n:' || ht_canon(ht_json_number(j::numeric))
        WHEN 'boolean' THEN 'b:' || (j #>> '{}')
        WHEN 'array' THEN CASE WHEN jsonb_array_length(j) > 0 THEN '*list' END
        WHEN 'object' THEN CASE WHEN j <> '{}'::jsonb THEN '*obj' END END
$$;

-- The keys of a list's items (what `equals`, `in` and `contains` look for in a list); a
-- scalar has the one key '*scalar', so that an index on this covers scalar fields as well.
CREATE OR REPLACE FUNCTION ht_keys(j jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    out text[] := '{}';
    k text;
BEGIN
    CASE jsonb_typeof(j)
        WHEN 'array' THEN
            FOR i IN 0 .. jsonb_array_length(j) - 1 LOOP
                k := ht_key(j -> i);
                IF k IS NOT NULL THEN
                    out := out || k;
                END IF;
            END LOOP;
        WHEN 'object', 'null' THEN
            NULL;
        ELSE
            out := '{*scalar}';
    END CASE;
    RETURN out;
END
$$;

-- str() of a double as Python writes it (repr), given ht_float's value of it.
CREATE OR REPLACE FUNCTION ht_float_text(v numeric) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    t text;
    zeros int;
    sig text;
BEGIN
    IF v = 'Infinity'::numeric OR v = '-Infinity'::numeric THEN
        RETURN CASE WHEN v > 0 THEN 'inf' ELSE '-inf' END;
    ELSIF v = trunc(v) THEN
        RETURN trunc(v)::text;
    END IF;
    t := trim_scale(abs(v))::text;
    IF left(t, 2) = '0.' THEN
        sig := ltrim(substr(t, 3), '0');
        zeros := char_length(t) - 2 - char_length(sig);
        IF zeros >= 4 THEN
            t := left(sig, 1) || CASE WHEN char_length(sig) > 1 THEN '.' || substr(sig, 2) ELSE '' END
                || CASE WHEN zeros < 9 THEN 'e-0' ELSE 'e-' END || (zeros + 1);
        END IF;
    END IF;
    RETURN CASE WHEN v < 0 THEN '-' || t ELSE t END;
END
$$;

CREATE OR REPLACE FUNCTION ht_text_of(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t ~ '^[!-*,/:-~]([ -~]*[!-~])?$'
        THEN lower(t COLLATE "C") COLLATE "default"
        ELSE nullif(ht_fold(ht_strip(t)), '') END
$$;

-- values.as_text.
CREATE OR REPLACE FUNCTION ht_text(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(j)
        WHEN 'string' THEN ht_text_of(j #>> '{}')
        WHEN 'number' THEN CASE WHEN scale(j::numeric) = 0
                AND j::numeric BETWEEN -9223372036854775808 AND 18446744073709551615
            THEN j::numeric::text ELSE ht_float_text(ht_float(j::numeric)) END
        WHEN 'boolean' THEN j #>> '{}' END
$$;

-- values.is_empty; a missing field (NULL) is empty.
CREATE OR REPLACE FUNCTION ht_empty(j jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(j)
        WHEN 'string' THEN (j #>> '{}') !~ '^[!-~]' AND ht_strip(j #>> '{}') = ''
        WHEN 'array' THEN jsonb_array_length(j) = 0
        WHEN 'object' THEN j = '{}'::jsonb
        WHEN 'number' THEN false
        WHEN 'boolean' THEN false
        ELSE true END
$$;

-- A valid date, or NULL (never an error).
CREATE OR REPLACE FUNCTION ht_ymd(y int, m int, d int) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN y BETWEEN 1 AND 9999 AND m BETWEEN 1 AND 12 THEN
        CASE WHEN d >= 1 AND d <= extract(day FROM make_date(y, m, 1) + interval '1 month - 1 day')
        THEN make_date(y, m, d) END END
$$;

-- ISO 8601 as Python 3.11's C datetime.fromisoformat reads it (byte for byte, quirks
-- included), in three parts: digits, HH[:MM[:SS[.f]]] and the date.
CREATE OR REPLACE FUNCTION ht_iso_int(b bytea, pos int, n int) RETURNS int
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    v int := 0;
    c int;
BEGIN
    FOR i IN 0 .. n - 1 LOOP
        c := CASE WHEN pos + i < length(b) THEN get_byte(b, pos + i) ELSE 0 END;
        IF c < 48 OR c > 57 THEN
            RETURN NULL;
        END IF;
        v := v * 10 + c - 48;
    END LOOP;
    RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION ht_iso_time(
    b bytea, p int, p_end int, OUT rc int, OUT hms int[], OUT us int)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    len int := length(b);
    has_sep boolean := true;
    c int;
    v int;
    n int;
BEGIN
    hms := ARRAY[0, 0, 0];
    us := 0;
    FOR i IN 1 .. 3 LOOP
        v := ht_iso_int(b, p, 2);
        IF v IS NULL THEN
            rc := -3;
            RETURN;
        END IF;
        hms[i] := v;
        p := p + 2;
        c := CASE WHEN p < len THEN get_byte(b, p) ELSE 0 END;
        p := p + 1;
        IF i = 1 THEN
            has_sep := c = 58;
        END IF;
        IF p >= p_end THEN
            rc := (c <> 0)::int;
            RETURN;
        ELSIF has_sep AND c = 58 THEN
            CONTINUE;
        ELSIF c = 46 OR c = 44 THEN
            EXIT;
        ELSIF NOT has_sep THEN
            p := p - 1;
        ELSE
            rc := -4;
            RETURN;
        END IF;
    END LOOP;
    n := least(p_end - p, 6);
    IF n > 0 THEN
        v := ht_iso_int(b, p, n);
        IF v IS NULL THEN
            rc := -3;
            RETURN;
        END IF;
        us := v * (10 ^ (6 - n))::int;
        p := p + n;
    END IF;
    WHILE p < len AND get_byte(b, p) BETWEEN 48 AND 57 LOOP
        p := p + 1;
    END LOOP;
    rc := (p < len)::int;
END
$$;

CREATE OR REPLACE FUNCTION ht_iso_date(b bytea, len int) RETURNS date
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    y int := ht_iso_int(b, 0, 4);
    uses_sep boolean := length(b) > 4 AND get_byte(b, 4) = 45;
    p int := CASE WHEN uses_sep THEN 5 ELSE 4 END;
    a int;
    d int;
    jan4 date;
BEGIN
    IF y IS NULL OR y < 1 THEN
        RETURN NULL;
    END IF;
    IF p < length(b) AND get_byte(b, p) = 87 THEN  -- YYYY-?Www-?D?
        a := ht_iso_int(b, p + 1, 2);
        p := p + 3;
        IF a IS NULL THEN
            RETURN NULL;
        ELSIF p < len THEN
            IF uses_sep THEN
                IF p >= length(b) OR get_byte(b, p) <> 45 THEN
                    RETURN NULL;
                END IF;
                p := p + 1;
            END IF;
            d := ht_iso_int(b, p, 1);
        ELSE
            d := 1;
        END IF;
        jan4 := make_date(y, 1, 4);
        IF d IS NULL OR d < 1 OR d > 7 OR a < 1 OR a > 53 OR (a = 53 AND NOT (
            extract(isodow FROM make_date(y, 1, 1)) = 4
            OR (extract(isodow FROM make_date(y, 1, 1)) = 3
                AND extract(day FROM make_date(y, 3, 1) - 1) = 29)))
        THEN
            RETURN NULL;
        END IF;
        jan4 := jan4 - (extract(isodow FROM jan4)::int - 1) + (a - 1) * 7 + (d - 1);
        RETURN CASE WHEN extract(year FROM jan4) <= 9999 THEN jan4 END;
    END IF;
    a := ht_iso_int(b, p, 2);
    p := p + 2;
    IF uses_sep THEN
        IF p >= length(b) OR get_byte(b, p) <> 45 THEN
            RETURN NULL;
        END IF;
        p := p + 1;
    END IF;
    RETURN ht_ymd(y, a, ht_iso_int(b, p, 2));
END
$$;

-- values.as_when of a stripped str: a naive UTC timestamp, or NULL.
CREATE OR REPLACE FUNCTION ht_when_parse(s text) RETURNS timestamp
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    b bytea;
    len int;
    sep int;
    d date;
    p int;
    tz int;
    sep_byte int;
    clock record;
    zone record;
    offset_us bigint := 0;
    result timestamp;
BEGIN
    IF char_length(s) < 10 OR left(s, 4) !~ '^[0-9]{4}$' THEN
        RETURN NULL;
    END IF;
    IF char_length(s) = 10 THEN  -- date.fromisoformat
        b := convert_to(s, 'UTF8');
        RETURN CASE WHEN length(b) = 10 THEN ht_iso_date(b, 10) END;
    END IF;
    b := convert_to(replace(s, 'Z', '+00:00'), 'UTF8');
    len := length(b);
    IF get_byte(b, 4) = 45 THEN  -- where the date ends
        IF get_byte(b, 5) <> 87 THEN
            sep := 10;
        ELSIF get_byte(b, 8) = 45 THEN
            sep := CASE WHEN get_byte(b, 10) BETWEEN 48 AND 57 THEN 8 ELSE 10 END;
        ELSE
            sep := 8;
        END IF;
    ELSIF get_byte(b, 4) = 87 THEN
        sep := 7;
        WHILE sep < len AND get_byte(b, sep) BETWEEN 48 AND 57 LOOP
            sep := sep + 1;
        END LOOP;
        IF sep >= 9 THEN
            sep := CASE WHEN sep % 2 = 0 THEN 7 ELSE 8 END;
        END IF;
    ELSE
        sep := 8;
    END IF;
    d := ht_iso_date(b, sep);
    IF d IS NULL THEN
        RETURN NULL;
    END IF;
    sep_byte := get_byte(b, sep);  -- the separator: any one character
    p := sep + CASE WHEN sep_byte < 128 THEN 1 WHEN sep_byte & 240 = 224 THEN 3
        WHEN sep_byte & 240 = 240 THEN 4 ELSE 2 END;
    tz := p;
    LOOP
        EXIT WHEN tz < len AND get_byte(b, tz) IN (90, 43, 45);  -- Z + -
        tz := tz + 1;
        EXIT WHEN tz >= len;
    END LOOP;
    SELECT * INTO clock FROM ht_iso_time(b, p, tz);
    IF clock.rc < 0 OR (tz = len AND clock.rc = 1) THEN
        RETURN NULL;
    END IF;
    IF clock.hms[1] > 23 OR clock.hms[2] > 59 OR clock.hms[3] > 59 THEN
        RETURN NULL;
    END IF;
    result := d + make_time(clock.hms[1], clock.hms[2], clock.hms[3])
        + clock.us * interval '1 microsecond';
    IF tz <> len THEN
        IF get_byte(b, tz) = 90 THEN
            RETURN CASE WHEN tz + 1 = len THEN result END;
        END IF;
        SELECT * INTO zone FROM ht_iso_time(b, tz + 1, len);
        IF zone.rc <> 0 THEN
            RETURN NULL;
        END IF;
        offset_us := zone.hms[1] * 3600 + zone.hms[2] * 60 + zone.hms[3];
        IF offset_us >= 86400 THEN
            RETURN NULL;
        ELSIF offset_us > 0 THEN
            offset_us := offset_us * 1000000 + zone.us;
        END IF;
        IF get_byte(b, tz) = 45 THEN
            offset_us := -offset_us;
        END IF;
        result := result - offset_us * interval '1 microsecond';
        IF result < '0001-01-01' OR result >= '10000-01-01' THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN result;
END
$$;

-- The common date-times, 'YYYY-MM-DDTHH:MM:SS' (or a space for the 'T') with up to 6 decimals
-- and a 'Z' or '+HH:MM' zone (`zone` long), read at their fixed places.
CREATE OR REPLACE FUNCTION ht_when_fixed(t text, zone int) RETURNS timestamp
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    d date := ht_ymd(substr(t, 1, 4)::int, substr(t, 6, 2)::int, substr(t, 9, 2)::int);
    decimals int := char_length(t) - 20 - zone;
    offset_s int := 0;
    result timestamp;
BEGIN
    IF d IS NULL OR substr(t, 12, 2)::int > 23 OR substr(t, 15, 2)::int > 59
        OR substr(t, 18, 2)::int > 59 THEN
        RETURN NULL;
    END IF;
    IF zone = 6 THEN
        offset_s := substr(t, char_length(t) - 4, 2)::int * 3600 + right(t, 2)::int * 60;
        IF offset_s >= 86400 THEN
            RETURN NULL;
        ELSIF substr(t, char_length(t) - 5, 1) = '-' THEN
            offset_s := -offset_s;
        END IF;
    END IF;
    result := d + make_time(substr(t, 12, 2)::int, substr(t, 15, 2)::int, substr(t, 18, 2)::int)
        - offset_s * interval '1 second';
    IF decimals > 0 THEN
        result := result + rpad(substr(t, 21, decimals), 6, '0')::int * interval '1 microsecond';
    END IF;
    RETURN CASE WHEN result >= '0001-01-01' AND result < '10000-01-01' THEN result END;
END
$$;

CREATE OR REPLACE FUNCTION ht_when_stripped(s text) RETURNS timestamp
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN char_length(s) >= 10 AND s ~ '^[0-9]{4}' THEN ht_when_parse(s) END
$$;

-- values.as_when of a str: a naive UTC timestamp, or NULL. `shape` is t with every ASCII digit
-- a 9: bare dates and the common date-times go the quick way.
CREATE OR REPLACE FUNCTION ht_when_shaped(t text, shape text) RETURNS timestamp
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN shape = '9999-99-99'
            THEN ht_ymd(substr(t, 1, 4)::int, substr(t, 6, 2)::int, substr(t, 9, 2)::int)
        WHEN left(shape, 19) IN ('9999-99-99T99:99:99', '9999-99-99 99:99:99')
            AND substr(shape, 20) IN (
            '', 'Z', '+99:99', '-99:99', '.9', '.9Z', '.9+99:99', '.9-99:99', '.99', '.99Z',
            '.99+99:99', '.99-99:99', '.999', '.999Z', '.999+99:99', '.999-99:99', '.9999',
            '.9999Z', '.9999+99:99', '.9999-99:99', '.99999', '.99999Z', '.99999+99:99',
            '.99999-99:99', '.999999', '.999999Z', '.999999+99:99', '.999999-99:99')
            THEN ht_when_fixed(t, CASE WHEN right(shape, 1) = 'Z' THEN 1
                WHEN right(shape, 6) IN ('+99:99', '-99:99') THEN 6 ELSE 0 END)
        ELSE ht_when_stripped(ht_strip(t)) END
$$;

CREATE OR REPLACE FUNCTION ht_when_text(t text) RETURNS timestamp
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ht_when_shaped(t, translate(t, '0123456789', '9999999999'))
$$;

CREATE OR REPLACE FUNCTION ht_when(j jsonb) RETURNS timestamp
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(j) = 'string' THEN ht_when_text(j #>> '{}') END
$$;

-- values.as_when's "was a bare date": a str of 10 characters once stripped.
CREATE OR REPLACE FUNCTION ht_is_date(j jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_typeof(j) = 'string' AND char_length(ht_strip(j #>> '{}')) = 10
$$;
