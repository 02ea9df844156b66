// HEIC, AVIF, GIF (still and animated) and TIFF drops through the daemon: the outputs in the
// store are read back with libvips (format, size, frames), the job records say which outputs
// are animations, and a GIF of 10,000 frames ends in failed/ with the limit that refused it.
#include <vips/vips.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "tests/integration/images.hpp"
#include "tests/integration/spool_fixture.hpp"

namespace imgspool::it {
namespace {

struct Unref {
    void operator()(VipsImage* image) const { g_object_unref(image); }
};
using Image = std::unique_ptr<VipsImage, Unref>;

std::string to_buffer(VipsImage* image, const char* suffix) {
    void* buf = nullptr;
    size_t len = 0;
    EXPECT_EQ(vips_image_write_to_buffer(image, suffix, &buf, &len, nullptr), 0)
        << suffix << ": " << vips_error_buffer();
    std::string bytes(static_cast<const char*>(buf), len);
    g_free(buf);
    return bytes;
}

// A photo-like source (make_jpeg's gradient and noise) re-encoded as `suffix` (".heic", ...).
std::string photo_as(const char* suffix, int w, int h, unsigned seed) {
    const std::string jpeg = make_jpeg({.width = w, .height = h, .seed = seed});
    Image image(vips_image_new_from_buffer(jpeg.data(), jpeg.size(), "", nullptr));
    EXPECT_TRUE(image) << vips_error_buffer();
    return image ? to_buffer(image.get(), suffix) : std::string();
}

// `frames` frames of w x h, each a flat colour (red, green, blue, ...), 80 ms apart, looping.
std::string animated_gif(int w, int h, int frames) {
    const double colours[3][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    std::vector<Image> pages;
    std::vector<VipsImage*> raw;
    for (int i = 0; i < frames; ++i) {
        VipsImage* black = nullptr;
        EXPECT_EQ(vips_black(&black, w, h, "bands", 3, nullptr), 0);
        Image b(black);
        const double ones[3] = {1, 1, 1};
        VipsImage* filled = nullptr;
        EXPECT_EQ(vips_linear(b.get(), &filled, ones, colours[i % 3], 3, "uchar", TRUE, nullptr),
                  0);
        pages.emplace_back(filled);
        raw.push_back(filled);
    }
    VipsImage* joined = nullptr;
    EXPECT_EQ(vips_arrayjoin(raw.data(), &joined, frames, "across", 1, nullptr), 0);
    Image stack(joined);
    VipsImage* copy = nullptr;
    EXPECT_EQ(vips_copy(stack.get(), &copy, "interpretation", VIPS_INTERPRETATION_sRGB, nullptr),
              0);
    Image out(copy);
    vips_image_set_int(out.get(), VIPS_META_PAGE_HEIGHT, h);
    std::vector<int> delays(frames, 80);
    vips_image_set_array_int(out.get(), "delay", delays.data(), frames);
    vips_image_set_int(out.get(), "loop", 0);
    return to_buffer(out.get(), ".gif");
}

// A GIF of `frames` 1x1 frames on a 120x120 screen, written byte by byte (a frame bomb costs a
// few bytes a frame).
std::string frame_bomb_gif(int frames) {
    std::string gif("GIF89a\x78\x00\x78\x00\x80\x00\x00\x00\x00\x00\xFF\xFF\xFF", 19);
    for (int i = 0; i < frames; ++i) {
        gif += std::string("\x21\xF9\x04\x00\x01\x00\x00\x00", 8);
        gif += std::string("\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00", 10);
        gif += std::string("\x02\x02\x44\x01\x00", 5);
    }
    return gif + ";";
}

struct Output {
    std::string format;  // as libvips read it: "jpeg", "webp", "gif", "avif", "heic"
    int width = 0;
    int height = 0;  // of one frame
    int frames = 0;
};

// Every frame of the stored object (n=-1 where the loader takes it).
Output read_output(const stdfs::path& path) {
    const std::string bytes = read_file(path);
    const bool pages = path.extension() == ".gif" || path.extension() == ".webp";
    Image image(
        vips_image_new_from_buffer(bytes.data(), bytes.size(), pages ? "n=-1" : "", nullptr));
    EXPECT_TRUE(image) << path << ": " << vips_error_buffer();
    if (!image) return {};
    Image memory(vips_image_copy_memory(image.get()));  // the whole decode must succeed
    EXPECT_TRUE(memory) << path << ": " << vips_error_buffer();
    if (!memory) return {};
    const char* loader = "";
    vips_image_get_string(image.get(), "vips-loader", &loader);
    std::string format(loader, std::string_view(loader).find("load"));
    const char* codec = "";
    if (format == "heif" && vips_image_get_string(image.get(), "heif-compression", &codec) == 0) {
        format = std::string_view(codec) == "av1" ? "avif" : "heic";
    }
    const int page = vips_image_get_page_height(memory.get());
    return {format, vips_image_get_width(memory.get()), page,
            vips_image_get_height(memory.get()) / page};
}

// The profile every test here drops into: a smart-cropped thumbnail in the source format, WebP
// and AVIF, and the source size in the source format.
DaemonConfig formats_profile(bool animated) {
    DaemonConfig c;
    c.profile = "formats";
    c.extra_toml = std::string("\n[profiles.formats]\nanimated = ") +
                   (animated ? "true" : "false") +
                   "\n[[profiles.formats.variant]]\n"
                   "name = \"thumb\"\nwidth = 160\nheight = 160\nfit = \"cover\"\n"
                   "crop = \"attention\"\nformats = [\"source\", \"webp\", \"avif\"]\n"
                   "[[profiles.formats.variant]]\n"
                   "name = \"full\"\nwidth = 0\nheight = 0\nformats = [\"source\"]\n";
    return c;
}

// The recorded outputs of a job, by "variant.format".
std::map<std::string, nlohmann::json> recorded_outputs(SpoolFixture& f, const std::string& id) {
    const std::vector<Row> rows = f.query("SELECT outputs FROM images WHERE upload_id = ?1", {id});
    std::map<std::string, nlohmann::json> by_name;
    if (rows.size() != 1) return by_name;
    for (const nlohmann::json& o : nlohmann::json::parse(rows[0].at("outputs"))) {
        by_name[o.at("variant").get<std::string>() + "." + o.at("format").get<std::string>()] = o;
    }
    return by_name;
}

class FormatsIt : public SpoolFixture {
  protected:
    std::string complete(const std::string& name, const std::string& bytes) {
        write_file(inbox() / name, bytes);
        const std::optional<Row> job = wait_complete(name, 60s);
        EXPECT_TRUE(job) << name << " was not completed";
        return job ? job->at("id") : std::string();
    }
    Output stored(const std::string& id, const char* file) {
        return read_output(objects() / "images" / id / file);
    }
};

TEST_F(FormatsIt, StillSourcesOfEveryNewFormatBecomeTheirOutputs) {
    write_config(formats_profile(false));
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));

    const std::string heic = complete("phone.heic", photo_as(".heic", 640, 480, 61));
    const std::string avif = complete("web.avif", photo_as(".avif", 600, 400, 62));
    const std::string gif = complete("still.gif", photo_as(".gif", 320, 240, 63));
    const std::string tiff = complete("scan.tif", photo_as(".tif", 500, 700, 64));
    ASSERT_FALSE(heic.empty() || avif.empty() || gif.empty() || tiff.empty());

    struct Expect {
        std::string id;
        const char* file;
        const char* format;
        int width, height;
    };
    // HEIC and TIFF: browsers show neither, so "source" is source_fallback (jpeg).
    for (const Expect& e : std::vector<Expect>{{heic, "thumb.jpg", "jpeg", 160, 160},
                                               {heic, "thumb.webp", "webp", 160, 160},
                                               {heic, "thumb.avif", "avif", 160, 160},
                                               {heic, "full.jpg", "jpeg", 640, 480},
                                               {avif, "thumb.avif", "avif", 160, 160},
                                               {avif, "full.avif", "avif", 600, 400},
                                               {gif, "thumb.gif", "gif", 160, 160},
                                               {gif, "full.gif", "gif", 320, 240},
                                               {tiff, "thumb.jpg", "jpeg", 160, 160},
                                               {tiff, "full.jpg", "jpeg", 500, 700}}) {
        SCOPED_TRACE(e.file);
        const Output o = stored(e.id, e.file);
        EXPECT_EQ(o.format, e.format);
        EXPECT_EQ(o.width, e.width);
        EXPECT_EQ(o.height, e.height);
        EXPECT_EQ(o.frames, 1);
    }
    EXPECT_EQ(job(heic)->at("format"), "heic");
    EXPECT_EQ(job(avif)->at("format"), "avif");
    EXPECT_EQ(job(tiff)->at("format"), "tiff");
    EXPECT_EQ(read_file(done() / "phone.heic"), photo_as(".heic", 640, 480, 61));
}

TEST_F(FormatsIt, AnAnimatedProfileKeepsTheFramesInWebpAndGifAndRecordsThem) {
    write_config(formats_profile(true));
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const std::string id = complete("spinner.gif", animated_gif(300, 200, 8));
    ASSERT_FALSE(id.empty());
    for (const char* file : {"thumb.gif", "thumb.webp"}) {
        SCOPED_TRACE(file);
        const Output o = stored(id, file);
        EXPECT_EQ(o.width, 160);
        EXPECT_EQ(o.height, 160);
        EXPECT_EQ(o.frames, 8);
    }
    EXPECT_EQ(stored(id, "full.gif").frames, 8);
    EXPECT_EQ(stored(id, "full.gif").height, 200);
    EXPECT_EQ(stored(id, "thumb.avif").frames, 1);  // AVIF outputs are stills
    const auto outputs = recorded_outputs(*this, id);
    ASSERT_EQ(outputs.size(), 4u);
    EXPECT_EQ(outputs.at("thumb.webp").value("frames", 1), 8);
    EXPECT_EQ(outputs.at("thumb.gif").value("frames", 1), 8);
    EXPECT_FALSE(outputs.at("thumb.avif").contains("frames"));
}

TEST_F(FormatsIt, AStillProfileTakesTheFirstFrameAndFrameBombsFail) {
    write_config(formats_profile(false));
    start_daemon();
    ASSERT_TRUE(wait_for([&] { return stdfs::is_directory(inbox()); }));
    const std::string id = complete("spinner.gif", animated_gif(300, 200, 8));
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(stored(id, "thumb.webp").frames, 1);
    EXPECT_EQ(stored(id, "full.gif").frames, 1);
    EXPECT_TRUE(recorded_outputs(*this, id).at("thumb.webp").is_object());
    EXPECT_FALSE(recorded_outputs(*this, id).at("thumb.webp").contains("frames"));

    write_file(inbox() / "bomb.gif", frame_bomb_gif(10'000));
    const std::optional<Row> bomb = wait_failed("bomb.gif");
    ASSERT_TRUE(bomb);
    EXPECT_EQ(bomb->at("error_stage"), "validate");
    EXPECT_NE(bomb->at("error").find("max_frames = 1000"), std::string::npos) << bomb->at("error");
    EXPECT_TRUE(stdfs::exists(failed() / "bomb.gif"));
}

}  // namespace
}  // namespace imgspool::it
